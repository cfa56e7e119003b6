#!/usr/bin/env bash
# The long fault tests (pytest marker "nightly"), against a freshly started local stack; .ci/run
# runs them after make test. The stack is stopped at the end unless it was running before.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

source scripts/test-stack.sh

echo "== pytest -m nightly"
$BIN/pytest -q -p no:cacheprovider -m nightly "$@"
