#!/usr/bin/env bash
# The whole check: lint, types, then the tests against a freshly started local stack.
# The stack is stopped at the end, whatever happened (unless it was already running before).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== mypy --strict"
$BIN/mypy .
echo "== import layers (docs/architecture.md)"
PYTHONPATH=. $BIN/lint-imports
make --no-print-directory helm-check

echo "== native core (cargo fmt, clippy, tests)"
cargo fmt --manifest-path native/Cargo.toml --check
cargo clippy --manifest-path native/Cargo.toml --all-features --all-targets -q -- -D warnings
cargo test --manifest-path native/Cargo.toml -q

echo "== local stack"
source scripts/test-stack.sh

echo "== pytest"
$BIN/pytest -q -p no:cacheprovider "$@"
