"""``clickstream campaigns backtest`` on the real S3 (moto server) and the customer store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from sinks.parquet_archive import ArchiveWriter
from state.customer_store import load_customers
from tests.conftest import Services
from tests.support.backtest_scenario import (
    COUNTS,
    DAY,
    EXPECTED_BOTH_DAYS,
    EXPECTED_DAY,
    EXPECTED_TOTAL_DAY,
    ROWS_DAY,
    archive_objects,
    by_campaign,
    write_customers,
)

SHIPPED = Path(__file__).resolve().parents[2] / "campaigns"


def write_archive(services: Services) -> None:
    settings = services.settings
    writer = ArchiveWriter(settings.s3_bucket, settings.s3_prefix, settings.storage_options())
    for obj in archive_objects():
        writer.write(obj)


def test_the_backtest_reads_the_jobs_archive_on_s3_with_the_profiles_in_redis(
    services: Services, tmp_path: Path
) -> None:
    settings = services.settings
    write_archive(services)
    load_customers(services.redis, settings.redis_prefix, write_customers(tmp_path / "c.csv"))
    env = settings.as_environment()

    # No --from: the job's own archive, s3://<bucket>/<prefix>.
    newest = CliRunner().invoke(
        app, ["campaigns", "backtest", str(SHIPPED), "--days", "1", "--json"], env=env
    )

    assert newest.exit_code == 0, newest.output
    report = json.loads(newest.stdout)
    assert report["archive"] == f"s3://{settings.s3_bucket}/{settings.s3_prefix}"
    assert (report["first_day"], report["last_day"]) == (DAY, DAY)
    assert by_campaign(report) == EXPECTED_DAY
    assert {k: report["totals"][k] for k in COUNTS} == EXPECTED_TOTAL_DAY
    assert (report["rows"], report["duplicates"], report["without_customer"]) == (ROWS_DAY, 1, 1)

    both = CliRunner().invoke(
        app,
        ["campaigns", "backtest", str(SHIPPED), "--days", "2", "--json",
         "--from", f"s3://{settings.s3_bucket}/{settings.s3_prefix}/"],
        env=env,
    )  # fmt: skip
    assert both.exit_code == 0, both.output
    assert by_campaign(json.loads(both.stdout)) == EXPECTED_BOTH_DAYS


def test_an_empty_customer_store_is_refused_with_what_to_do(services: Services) -> None:
    write_archive(services)

    result = CliRunner().invoke(
        app,
        ["campaigns", "backtest", str(SHIPPED), "--days", "1"],
        env={**services.settings.as_environment(), "COLUMNS": "300"},
    )

    assert result.exit_code == 1
    assert "has no extract loaded" in result.stderr
    assert "clickstream customers load FILE" in result.stderr
    assert "--customers FILE" in result.stderr


def test_a_prefix_without_an_archive_says_so(services: Services, tmp_path: Path) -> None:
    settings = services.settings
    customers = write_customers(tmp_path / "c.csv")

    result = CliRunner().invoke(
        app,
        ["campaigns", "backtest", str(SHIPPED), "--customers", str(customers)],
        env={**settings.as_environment(), "COLUMNS": "300"},
    )

    assert result.exit_code == 1
    assert "the archive holds no events (no dt= partition)" in result.stderr
