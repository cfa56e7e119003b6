#!/usr/bin/env bash
# The local development stack (Kafka, Redis, S3 API server) under .stack/:
#   scripts/stack.sh up [--only kafka,redis,s3] | down [--wipe] [--only ...] | status [--only ...]
# A thin wrapper around `python -m devstack` (development tooling, not in the wheel); run `make install` first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "error: .venv is missing: run 'make install' first" >&2
  exit 1
fi
case "${1:-}" in
  up | down | status | --help) ;;
  *)
    echo "usage: scripts/stack.sh up|down|status [options]  (scripts/stack.sh --help)" >&2
    exit 2
    ;;
esac
exec .venv/bin/python -m devstack "$@"
