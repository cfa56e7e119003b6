# Sourced by scripts/test.sh and scripts/nightly.sh: start the local stack for the tests and stop
# it when the script exits, unless it was already running before.
BIN=.venv/bin
started_here=0
if ! $BIN/python -m devstack status >/dev/null 2>&1; then
  started_here=1
fi
cleanup() {
  if [ "$started_here" = 1 ]; then $BIN/python -m devstack down || true; fi
}
trap cleanup EXIT
$BIN/python -m devstack up
