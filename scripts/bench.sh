#!/usr/bin/env bash
# Throughput benchmark through the real local Kafka (see bench/RESULTS.md). Extra arguments go
# to `python -m bench.run`, e.g. `make bench ARGS="--events 2000000"`.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/clickstream stack up
.venv/bin/python -m bench.run "$@"
