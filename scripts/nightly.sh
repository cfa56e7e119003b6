#!/usr/bin/env bash
# The long fault tests (pytest marker "nightly"), against a freshly started local stack; .ci/run
# runs them after make test. The stack is stopped at the end unless it was running before.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

started_here=0
if ! $BIN/clickstream stack status >/dev/null 2>&1; then
  started_here=1
fi
cleanup() {
  if [ "$started_here" = 1 ]; then $BIN/clickstream stack down || true; fi
}
trap cleanup EXIT
$BIN/clickstream stack up

echo "== pytest -m nightly"
$BIN/pytest -q -p no:cacheprovider -m nightly "$@"
