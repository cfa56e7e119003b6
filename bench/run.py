"""``python -m bench.run``: produce simulated events into the real local Kafka, run the job over
them as a backlog, and report end-to-end events/s, CPU per event and peak RSS.

Two traffic profiles: ``day`` (the headline) is a bank's day, 24 hours of event time over the
daily curve (a quiet night, a busy evening), so a poll spans realistic event time and sessions
open and close during the run; ``burst`` is the same number of events at 3,000/s of event time
(minutes), the profile of the earlier results. The events are produced before the clock starts,
as after a night of downtime; the job is timed from its first consumed message to its last
flushed output. Each run uses its own topic, Redis prefix and S3 prefix.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import redis
import typer
from rich.console import Console

from sources.customer_sample import write_sample_extract
from sources.kafka import ensure_topics
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter, emit
from state.customer_store import load_customers
from state.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("day", "burst")
DAY_START = datetime(2026, 3, 2, tzinfo=UTC)
console = Console()


def bench(
    events: Annotated[int, typer.Option(help="Valid events to produce.")] = 1_000_000,
    partitions: Annotated[int, typer.Option(help="Partitions of the bench topic.")] = 4,
    workers: Annotated[int, typer.Option(help="Bytewax worker threads per process.")] = 1,
    processes: Annotated[int, typer.Option(help="Bytewax processes (a local cluster).")] = 1,
    batch_size: Annotated[int, typer.Option(help="Kafka messages per poll.")] = 20_000,
    shards: Annotated[int, typer.Option(help="Shard count.")] = 128,
    customers: Annotated[int, typer.Option(help="Simulated customers.")] = 50_000,
    noise: Annotated[bool, typer.Option(help="2% duplicates, 1% malformed, 1% late.")] = True,
    py_spy: Annotated[
        Path | None,
        typer.Option(help="Record the job with py-spy into <path>.txt; print where its time went."),
    ] = None,
    offers: Annotated[
        bool,
        typer.Option(
            help="Offers on: the shipped campaigns, with the customers' extract in the store."
        ),
    ] = False,
    profile: Annotated[
        str, typer.Option(help="'day': 24 h of event time on the daily curve; 'burst': 3,000/s.")
    ] = "day",
) -> None:
    """Run the throughput benchmark once and print the figures."""
    if profile not in PROFILES:
        raise typer.BadParameter(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    settings, config = produce(
        events,
        partitions,
        batch_size=batch_size,
        shards=shards,
        customers=customers,
        noise=noise,
        profile=profile,
        offers=offers,
    )
    console.print(
        f"running the job ({processes} process(es) x {workers} worker(s), batch {batch_size}, "
        f"{shards} shards)"
    )
    env = {**os.environ, **settings.as_environment()}
    command = [sys.executable, "-m", "bench.job", str(workers)]
    if processes > 1:
        addresses = ";".join(f"127.0.0.1:{2101 + i}" for i in range(processes))
        commands = [[*command, str(i), addresses] for i in range(processes)]
    else:
        commands = [command]
    if py_spy is not None:
        py_spy.parent.mkdir(parents=True, exist_ok=True)
        recorder = str(Path(sys.executable).with_name("py-spy"))
        record = [recorder, "record", "--threads", "--rate", "200", "--format", "raw"]
        # One recording per process: the first is <path>.txt, the others <path>-pN.txt.
        commands = [
            [*record, "--output", f"{py_spy}{f'-p{i}' if i else ''}.txt", "--", *c]
            for i, c in enumerate(commands)
        ]
    jobs = [
        subprocess.Popen(c, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for c in commands
    ]
    outputs = [job.communicate() for job in jobs]
    if any(job.returncode != 0 for job in jobs):
        for out, err in outputs:
            console.print(out.decode()[-2000:], err.decode()[-2000:])
        raise typer.Exit(1)
    # The job's report is its last JSON line (py-spy, when recording, writes after it).
    runs = [
        json.loads([line for line in out.decode().splitlines() if line.startswith("{")][-1])
        for out, _ in outputs
    ]
    figures = {
        "cpu_s": sum(r["cpu_s"] for r in runs),
        "system_cpu_s": sum(r.get("system_cpu_s", 0.0) for r in runs),
        "context_switches": sum(r.get("context_switches", 0) for r in runs),
        "seconds": max(r["ended"] for r in runs) - min(r["first"] for r in runs),
        "peak_rss_mb": sum(r["peak_rss_mb"] for r in runs),
        "startup_s": max(r["startup_s"] for r in runs),
    }
    messages, valid, late = pipeline_counts(settings)
    if valid != config.event_count:
        console.print(f"[red]the job accepted {valid} of {config.event_count}[/red]")
        raise typer.Exit(1)
    report = {
        "profile": profile,
        "event_time_span_h": round(config.duration_s / 3600, 2),
        "messages": messages,
        "valid_events": valid,
        "seconds": round(figures["seconds"], 2),
        "messages_per_s": round(messages / figures["seconds"]),
        "events_per_s": round(valid / figures["seconds"]),
        "cpu_us_per_event": round(figures["cpu_s"] * 1e6 / valid, 1),
        "cpu_s_by_process": [round(r["cpu_s"], 1) for r in runs],
        "system_cpu_share": round(figures["system_cpu_s"] / figures["cpu_s"], 3),
        "context_switches_per_1000_events": round(figures["context_switches"] * 1000 / valid, 1),
        "late": late,
        "peak_rss_mb": round(figures["peak_rss_mb"]),
        "startup_s": round(figures["startup_s"], 2),
        "processes": processes,
        "workers": workers,
        "partitions": partitions,
        "batch_size": batch_size,
        "shards": shards,
        "machine": machine(),
    }
    console.print_json(json.dumps(report))
    if py_spy is not None:
        from bench.profile import read, summary

        text = summary(read(Path(f"{py_spy}.txt")))
        Path(f"{py_spy}.summary.txt").write_text(text + "\n")
        console.print(text)
    forget(settings)


def produce(
    events: int,
    partitions: int,
    *,
    batch_size: int = 20_000,
    shards: int = 128,
    customers: int = 50_000,
    noise: bool = True,
    profile: str = "burst",
    offers: bool = False,
) -> tuple[Settings, SimulationConfig]:
    """Produce simulated events into a fresh topic; return settings for a job over them.

    The settings name the topic and a Redis and S3 prefix of their own (``bench-<id>``); with
    ``offers``, the shipped campaigns, offers and decisions topics of their own, and the
    simulated customers' extract loaded into the customer store.
    """
    run_id = uuid.uuid4().hex[:8]
    settings = load_settings(
        events_topics=(f"bench-{run_id}",),
        redis_prefix=f"bench-{run_id}",
        s3_prefix=f"bench-{run_id}",
        kafka_batch_size=batch_size,
        shard_count=shards,
        **(
            {
                "campaigns_dir": ROOT / "campaigns",
                "offers_topic": f"bench-{run_id}.offers",
                "offer_decisions_topic": f"bench-{run_id}.decisions",
            }
            if offers
            else {}
        ),
    )
    topic = settings.events_topics[0]
    topics = [topic, settings.dlq_topic_for(topic)]
    if offers:
        topics += [settings.offers_topic, settings.offer_decisions_topic]
    ensure_topics(settings.kafka_config(), topics, partitions)
    config = traffic(events, customers, profile=profile, noise=noise)
    if offers:
        with tempfile.TemporaryDirectory() as folder:
            extract = Path(folder) / "customers.csv"
            write_sample_extract(extract, config)
            client = redis.Redis.from_url(settings.redis_url)
            load_customers(client, settings.redis_prefix, extract)
    console.print(f"producing {config.event_count:,} events to {topic} ({partitions} partitions)")
    produce_started = time.perf_counter()
    with KafkaWriter(settings.kafka_config(), topic) as writer:
        summary = emit(generate(config), writer, expected_events=config.event_count)
    console.print(f"produced in {time.perf_counter() - produce_started:.1f} s: {summary}")
    return settings, config


def traffic(events: int, customers: int, *, profile: str, noise: bool) -> SimulationConfig:
    """The simulated traffic of a bench: a day spreads the events over 24 hours of event time
    on the daily curve, a burst sends 3,000 a second; noise is 2% duplicates, 1% malformed and
    1% late (up to 110 s)."""
    rate = events / 86_400 if profile == "day" else 3000.0
    return SimulationConfig(
        customers=customers,
        rate=rate,
        duration_s=events / rate,
        seed=1,
        start=DAY_START,
        daily_curve=profile == "day",
        duplicate_rate=0.02 if noise else 0.0,
        malformed_rate=0.01 if noise else 0.0,
        late_rate=0.01 if noise else 0.0,
        late_max_s=110.0,
    )


def pipeline_counts(settings: Settings) -> tuple[int, int, int]:
    """(messages read, valid events accepted, late events) by the job, from its pipeline
    figures."""
    client = redis.Redis.from_url(settings.redis_url)
    raw: Any = client.hgetall(f"{settings.redis_prefix}:pipeline")
    pipeline = {k.decode(): int(v) for k, v in raw.items()}
    messages = sum(pipeline.get(k, 0) for k in ("valid", "duplicates", "dead_letters"))
    return messages, pipeline.get("valid", 0), pipeline.get("late", 0)


def forget(settings: Settings) -> None:
    """Delete a run's Redis keys."""
    client = redis.Redis.from_url(settings.redis_url)
    for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000):
        client.delete(key)


def machine() -> str:
    """The machine, as the results name it."""
    return f"{platform.machine()}, {os.cpu_count() or 0} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    typer.run(bench)
