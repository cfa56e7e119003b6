#!/usr/bin/env bash
# Throughput benchmark through the real local Kafka (see bench/RESULTS.md). Extra arguments go
# to `python -m bench.run`, e.g. `make bench ARGS="--events 2000000"`; with `archive` first, to
# the archive path's benchmark `python -m bench.archive`, e.g. `make bench ARGS="archive"`; with
# `offers` first, to the event → offer latency benchmark `python -m bench.offers_latency`; with
# `reports` first, to the archive reports on Trino over a simulated day `python -m bench.reports`;
# with `logic` first, to the per-event logic alone, in-process, no servers `python -m bench.logic`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == logic ]]; then
    shift
    exec .venv/bin/python -m bench.logic "$@"
fi
.venv/bin/python -m devstack up
if [[ "${1:-}" == offers ]]; then
    shift
    exec .venv/bin/python -m bench.offers_latency "$@"
fi
if [[ "${1:-}" == reports ]]; then
    shift
    exec .venv/bin/python -m bench.reports "$@"
fi
if [[ "${1:-}" == archive ]]; then
    shift
    exec .venv/bin/python -m bench.archive "$@"
fi
.venv/bin/python -m bench.run "$@"
