"""``python -m bench.archive``: the archive path through the real local Kafka and S3.

Produces simulated events into the real Kafka (as :mod:`bench.run` does), then runs the real
job over them twice: with the Parquet archive to the real S3 server, its sink timed
(:mod:`bench.archive_job`), and with the archive's objects dropped instead of written; both
with a recovery store, so that every epoch ends with a snapshot as in production.

Reports the rows/s archived (every valid event once); the rows/s uploaded (an open chunk is
rewritten whole when it ages, so a row may be uploaded more than once); the rows/s the upload
threads could sustain (rows over their busy time per thread); the longest pause a flush causes
(the longest time the stream is held in the archive sink: waiting at an epoch's end for its
uploads, or handing objects to the upload threads); and the longest gap between two input
batches with and without the archive.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import s3fs
import typer
from rich.console import Console

from bench.run import ROOT, forget, machine, pipeline_counts, produce
from state.settings import Settings

console = Console()
LANES = 2
"""Upload threads of the job's archive sink (``ParquetArchiveSink``'s default)."""


def _run_job(settings: Settings, archive: str) -> dict[str, Any]:
    env = {**os.environ, **settings.as_environment()}
    job = subprocess.run(
        [sys.executable, "-m", "bench.archive_job", archive],
        env=env,
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if job.returncode != 0:
        console.print(job.stdout.decode()[-2000:], job.stderr.decode()[-2000:])
        raise typer.Exit(1)
    result: dict[str, Any] = json.loads(job.stdout.decode().strip().splitlines()[-1])
    return result


def bench_archive(
    events: Annotated[int, typer.Option(help="Valid events to produce (at most 1M).")] = 1_000_000,
    partitions: Annotated[int, typer.Option(help="Partitions of the bench topic.")] = 4,
) -> None:
    """Run the archive benchmark once and print the figures."""
    if not 0 < events <= 1_000_000:
        console.print("[red]--events must be between 1 and 1,000,000[/red]")
        raise typer.Exit(2)
    produced, config = produce(events, partitions)
    report: dict[str, Any] = {"valid_events": config.event_count}
    recovery_root = tempfile.mkdtemp(prefix="bench-archive-")
    for archive in ("on", "off"):
        # With a recovery store, as in production: every epoch ends with a snapshot, for which
        # the archive sink waits for its uploads.
        settings = produced.model_copy(
            update={
                "redis_prefix": f"{produced.redis_prefix}-{archive}",
                "s3_prefix": f"{produced.s3_prefix}-{archive}",
                "recovery_dir": Path(recovery_root) / archive,
            }
        )
        console.print(f"running the job with the archive {archive}")
        result = _run_job(settings, archive)
        _, valid, _ = pipeline_counts(settings)
        forget(settings)
        if valid != config.event_count:
            console.print(f"[red]the job accepted {valid} of {config.event_count}[/red]")
            raise typer.Exit(1)
        seconds = result["ended"] - result["first"]
        figures: dict[str, Any] = {
            "seconds": round(seconds, 2),
            "events_per_s": round(valid / seconds),
            "max_input_gap_s": round(result["max_input_gap_s"], 3),
            "peak_rss_mb": round(result["peak_rss_mb"]),
        }
        figures.update(_pause_figures(result))
        if archive == "on":
            figures.update(_upload_figures(result, valid, seconds))
            fs = s3fs.S3FileSystem(**settings.storage_options())
            fs.rm(f"{settings.s3_bucket}/{settings.s3_prefix}", recursive=True)
        report[f"archive_{archive}"] = figures
    shutil.rmtree(recovery_root, ignore_errors=True)
    report["chunk_rows"] = produced.archive_chunk_rows
    report["max_age_s"] = produced.archive_max_age_s
    report["epoch_s"] = produced.epoch_interval_s
    report["machine"] = machine()
    console.print_json(json.dumps(report))


def _pause_figures(result: dict[str, Any]) -> dict[str, Any]:
    # Pauses while events were still coming in held the stream back; the final flush after
    # the input's end only delays the job's exit.
    longest: dict[str, float] = {}
    total = 0.0
    final = 0.0
    for kind, at, seconds in result["pauses"]:
        if at > result["last"]:
            final += seconds
            continue
        longest[kind] = max(longest.get(kind, 0.0), seconds)
        if kind != "add":
            total += seconds
    flush_kinds = ("flush", "snapshot", "handover", "epoch_wait")
    return {
        "longest_flush_pause_s": round(max(longest.get(k, 0.0) for k in flush_kinds), 3),
        **{f"longest_{kind}_s": round(longest.get(kind, 0.0), 3) for kind in flush_kinds},
        "flush_pauses_total_s": round(total, 2),
        "final_flush_s": round(final, 2),
    }


def _upload_figures(result: dict[str, Any], valid: int, seconds: float) -> dict[str, Any]:
    uploads: list[tuple[str, int, float]] = result["uploads"]
    figures: dict[str, Any] = {
        "archive_rows_per_s": round(valid / seconds),
        "objects": len(uploads),
    }
    for table in ("events", "sessions"):
        rows = sum(n for t, n, _ in uploads if t == table)
        busy = sum(s for t, _, s in uploads if t == table)
        figures[f"{table}_rows_uploaded"] = rows
        figures[f"{table}_upload_capacity_rows_per_s"] = round(rows / (busy / LANES)) if busy else 0
    figures["rows_uploaded_per_s"] = round(figures["events_rows_uploaded"] / seconds)
    figures["longest_object_s"] = round(max((s for _, _, s in uploads), default=0.0), 3)
    return figures


if __name__ == "__main__":
    typer.run(bench_archive)
