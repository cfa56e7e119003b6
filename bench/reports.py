"""``python -m bench.reports``: a simulated day replayed into the archive on the local S3, then
every shipped report timed on the local Trino.

The day: 24 hours of event time on the daily curve, 35,000 customers by default (their extract
loaded into the customer store), replayed from a JSON-lines file (a back-fill) with the shipped
campaigns on into a Redis and S3 prefix and Kafka topics of its own; the archive's tables are
created in a schema of their own. Each report is run once to warm Trino's metadata, then timed
over the whole archive and with ``--day`` (the pruned form an analyst runs on a longer archive).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import redis
import s3fs
import typer
from rich.console import Console

from bench.run import ROOT, forget, machine
from flows.trino_sql import DayRange, reports, run
from sources.customer_sample import write_sample_extract
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import JsonLinesWriter
from state.archive_layout import EVENTS_TABLE, OFFERS_TABLE, SESSIONS_TABLE
from state.customer_store import load_customers
from state.settings import load_settings

console = Console()


def bench(
    events: Annotated[int, typer.Option(help="Valid events of the day.")] = 1_000_000,
    customers: Annotated[int, typer.Option(help="Simulated customers.")] = 35_000,
) -> None:
    """Archive a simulated day, then time every report on Trino."""
    run_id = uuid.uuid4().hex[:8]
    settings = load_settings(
        redis_prefix=f"bench-{run_id}",
        s3_prefix=f"bench-{run_id}",
        campaigns_dir=ROOT / "campaigns",
        offers_topic=f"bench-{run_id}.offers",
        offer_decisions_topic=f"bench-{run_id}.offer-decisions",
        # Simulated March traffic: the wall clock is later.
        offers_max_trigger_age_s=0,
    )
    schema = f"bench_{run_id}"
    config = SimulationConfig(
        customers=customers, rate=events / 86_400, duration_s=86_400, seed=3,
        start=datetime(2026, 3, 2, tzinfo=UTC), daily_curve=True,
        duplicate_rate=0.02, malformed_rate=0.01, late_rate=0.01, late_max_s=110,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        extract = Path(folder) / "customers.csv"
        write_sample_extract(extract, config)
        load_customers(redis.Redis.from_url(settings.redis_url), settings.redis_prefix, extract)
        path = Path(folder) / "day.jsonl.gz"
        console.print(f"simulating {config.event_count:,} events into {path.name}")
        with JsonLinesWriter(path) as writer:
            for message in generate(config):
                writer.write(message)
        console.print("replaying the day into the archive (clickstream run --source file:)")
        started = time.perf_counter()
        env = {**os.environ, **settings.as_environment()}
        command = [sys.executable, "-m", "flows", "run", "--source", f"file:{path}", "--no-api"]
        subprocess.run([*command, "--no-tail"], env=env, cwd=ROOT, check=True)
        replay_s = time.perf_counter() - started
    run(settings, "ddl", schema)
    run(settings, "sync", schema)
    timings: dict[str, float] = {}
    day_timings: dict[str, float] = {}
    rows: dict[str, int] = {}
    day = DayRange(config.start.date(), config.start.date())
    for name in reports():
        run(settings, f"reports/{name}", schema)  # metadata and file listings warmed
        started = time.perf_counter()
        _, result = run(settings, f"reports/{name}", schema)
        timings[name] = round(time.perf_counter() - started, 2)
        rows[name] = len(result)
        started = time.perf_counter()
        run(settings, f"reports/{name}", schema, day)
        day_timings[name] = round(time.perf_counter() - started, 2)
        console.print(f"{name}: {timings[name]} s, --day {day_timings[name]} s, {rows[name]} rows")
    fs = s3fs.S3FileSystem(**settings.storage_options())
    root = f"{settings.s3_bucket}/{settings.s3_prefix}"
    objects = {
        table: len(fs.find(f"{root}/{table}"))
        for table in (EVENTS_TABLE, SESSIONS_TABLE, OFFERS_TABLE)
    }
    report = {
        "valid_events": config.event_count,
        "replay_s": round(replay_s, 1),
        "report_s": timings,
        "report_day_s": day_timings,
        "report_rows": rows,
        "objects": objects,
        "machine": machine(),
    }
    console.print_json(json.dumps(report))
    forget(settings)


if __name__ == "__main__":
    typer.run(bench)
