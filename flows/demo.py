"""``make demo``: the job on the local stack with simulated traffic and a live summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import redis
import s3fs
from rich.console import Console
from rich.live import Live
from rich.table import Table

from operators.aggregates import RedisKeys
from sinks.redis_projection import redis_client
from sources.customer_sample import write_sample_extract
from sources.kafka import ensure_topics
from sources.simulator import SimulationConfig
from state.customer_store import load_customers
from state.outage import redact
from state.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / ".stack" / "demo"
# The demo keeps one recovery store per state format, so that a checkout with changed state
# does not try to resume a store it cannot read.
STATE_FORMAT = "2026-12-06.1"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _summary(
    settings: Settings, client: redis.Redis, fs: s3fs.S3FileSystem, previous: tuple[float, int]
) -> tuple[Table, tuple[float, int]]:
    keys = RedisKeys(settings.redis_prefix)
    raw = client.hgetall(keys.pipeline)
    totals = {_text(k): int(v) for k, v in raw.items()}
    valid = totals.get("valid", 0)
    now = time.monotonic()
    rate = (valid - previous[1]) / max(now - previous[0], 1e-6)
    redis_keys = sum(1 for _ in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000))
    root = f"{settings.s3_bucket}/{settings.s3_prefix}"
    try:
        files = [p for p in fs.find(root) if p.endswith(".parquet")]
    except FileNotFoundError:
        files = []
    fs.invalidate_cache()
    table = Table(title="bank-clickstream demo (Ctrl-C to stop)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("events accepted", f"{valid:,}")
    table.add_row("events/s", f"{rate:,.0f}")
    table.add_row("duplicates dropped", f"{totals.get('duplicates', 0):,}")
    table.add_row("late events", f"{totals.get('late', 0):,}")
    table.add_row("dead letters", f"{totals.get('dead_letters', 0):,}")
    today = datetime.now(UTC).date().isoformat()
    for outcome in ("sent", "held_out", "suppressed"):
        by_campaign = client.hgetall(f"{settings.redis_prefix}:offers:{today}:{outcome}")
        total = sum(int(v) for v in by_campaign.values())
        table.add_row(f"offers {outcome.replace('_', ' ')} today", f"{total:,}")
    table.add_row("Redis keys written", f"{redis_keys:,}")
    table.add_row("Parquet files on S3", f"{len(files):,}")
    return table, (now, valid)


def _interrupt(number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, *, customers: int, rate: float) -> None:
    """Bring up the stack, start the simulator and the job, and show figures until Ctrl-C."""
    console = Console()
    console.print("[bold]Starting the local stack (Kafka, Redis, S3)...[/bold]")
    subprocess.run([sys.executable, "-m", "devstack", "up", "--only", "kafka,redis,s3"], check=True)
    if settings.campaigns_dir is None:
        settings = settings.model_copy(update={"campaigns_dir": ROOT / "campaigns"})
    ensure_topics(
        settings.kafka_config(),
        [
            *settings.events_topics,
            *(settings.dlq_topic_for(t) for t in settings.events_topics),
            settings.offers_topic,
            settings.offer_decisions_topic,
        ],
        settings.kafka_topic_partitions,
    )
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    seed = int(time.time())
    extract = DEMO_DIR / "customers.csv"
    write_sample_extract(extract, SimulationConfig(customers=customers, seed=seed))
    client = redis_client(settings.redis_url, settings.redis_options())
    report = load_customers(client, settings.redis_prefix, extract)
    console.print(f"Loaded {report.rows:,} customer profiles ({extract}) as {report.version}.")
    job_log = (DEMO_DIR / "job.log").open("ab")
    sim_log = (DEMO_DIR / "simulator.log").open("ab")
    cli = [sys.executable, "-m", "flows"]
    job = subprocess.Popen(
        [
            *cli,
            "run",
            "--source",
            "kafka",
            "--recovery-dir",
            str(DEMO_DIR / f"recovery-{STATE_FORMAT}"),
        ],
        stdout=job_log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "CLICKSTREAM_CAMPAIGNS_DIR": str(settings.campaigns_dir)},
    )
    simulator = subprocess.Popen(
        [
            *cli, "simulate", "--to", "kafka", "--customers", str(customers),
            "--rate", str(rate), "--duration", str(7 * 24 * 3600), "--realtime",
            "--start", "now", "--seed", str(seed), "--duplicate-rate", "0.02",
            "--late-rate", "0.01", "--malformed-rate", "0.005", "--no-progress",
        ],
        stdout=sim_log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    fs = s3fs.S3FileSystem(**settings.storage_options())
    previous = (time.monotonic(), 0)
    # A closed terminal (SIGHUP) or a kill (SIGTERM) stops the demo as Ctrl-C does: the job
    # saves its state and exits, the simulator stops, nothing is left running.
    for number in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, _interrupt)
    try:
        with Live(console=console, refresh_per_second=2) as live:
            while True:
                table, previous = _summary(settings, client, fs, previous)
                live.update(table)
                for name, process in (("job", job), ("simulator", simulator)):
                    if process.poll() is not None:
                        console.print(f"[red]the {name} stopped; see {DEMO_DIR}/{name}.log[/red]")
                        raise KeyboardInterrupt
                time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        for process in (simulator, job):
            process.terminate()
        simulator.wait(timeout=30)
        job.wait(timeout=settings.stop_grace_s + 10)
    prefix = settings.redis_prefix
    dlq_topics = ", ".join(settings.dlq_topic_for(t) for t in settings.events_topics)
    console.print(
        "\n[bold]Where to look[/bold]\n"
        f"  Redis  {redact(settings.redis_url)}\n"
        f"    HGETALL {prefix}:pipeline                  job health counters\n"
        f"    XRANGE  {prefix}:series:events_by_type - +  events per closed minute\n"
        f"    HGETALL {prefix}:minute:events_by_type:<YYYY-MM-DDTHH:MM>\n"
        f"    ZRANGE  {prefix}:day:<YYYY-MM-DD>:top:exit_screens -10 -1 WITHSCORES\n"
        f"    HGETALL {prefix}:day:<YYYY-MM-DD>:by_segment:conversion_rate   (docs/redis-keys.md)\n"
        f"  S3     s3://{settings.s3_bucket}/{settings.s3_prefix}/events/dt=.../hour=.../"
        f"  (endpoint {settings.s3_endpoint_url})\n"
        f"  Kafka  dead letters on {dlq_topics}\n"
        f"         offers on {settings.offers_topic} (`clickstream offers tail`), every decision "
        f"on {settings.offer_decisions_topic}\n"
        f"    HGETALL {prefix}:offers:<YYYY-MM-DD>:campaign:<campaign id>   offer outcomes\n"
        f"  Campaigns {settings.campaigns_dir} (edit a file: the job reloads it)\n"
        f"  Logs   {DEMO_DIR}/job.log, {DEMO_DIR}/simulator.log; the stack keeps running "
        "(`make stack-down` stops it)",
        emoji=False,
    )
