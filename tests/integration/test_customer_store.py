"""The customer store on the real Redis: load, read back, version switch, unknown customers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sources.customer_sample import sample_rows, write_sample_extract
from sources.simulator import SimulationConfig
from state.customer_store import (
    CustomerProfiles,
    ExtractError,
    current_key,
    load_customers,
    parse_row,
)
from tests.conftest import Services


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_every_profile_of_the_extract_reads_back(
    services: Services, tmp_path: Path, suffix: str
) -> None:
    config = SimulationConfig(customers=3000, seed=5)
    path = tmp_path / f"customers{suffix}"
    write_sample_extract(path, config)
    report = load_customers(services.redis, services.settings.redis_prefix, path, batch_rows=700)
    assert (report.rows, report.bad_rows) == (3000, 0)
    rows = sample_rows(config)
    reader = CustomerProfiles(services.redis, services.settings.redis_prefix)
    profiles = reader.get_many(r["customer_id"] for r in rows)
    assert [profiles[r["customer_id"]] for r in rows] == [parse_row(r) for r in rows]
    consent = [p.sms_consent for p in profiles.values()]
    assert consent.count(True) > consent.count(False) > consent.count(None) > 0


def load_two_customers(services: Services, extract: Path) -> str:
    """Load C1 (retail, consent) and C2 (premium, no consent); return the store's prefix."""
    prefix = services.settings.redis_prefix
    extract.write_text("customer_id,segment,sms_consent\nC1,retail,yes\nC2,premium,no\n")
    load_customers(services.redis, prefix, extract)
    return prefix


def test_a_new_load_switches_atomically_and_removes_the_old_version(
    services: Services, tmp_path: Path
) -> None:
    prefix = load_two_customers(services, tmp_path / "first.csv")
    now = [0.0]
    reader = CustomerProfiles(services.redis, prefix, version_check_s=10, clock=lambda: now[0])
    assert reader.get_many(["C1"])["C1"].segment == "retail"

    second = tmp_path / "second.csv"
    second.write_text("customer_id,segment,sms_consent\nC1,private,yes\n")
    report = load_customers(services.redis, prefix, second)
    # Until the reader looks at the version again it serves its cached (complete) profile.
    assert reader.get_many(["C1"])["C1"].segment == "retail"
    now[0] = 11.0
    assert reader.get_many(["C1", "C2"])["C1"].segment == "private"
    assert reader.get_many(["C2"])["C2"].segment == "unknown"  # not in the new extract
    assert services.redis.get(current_key(prefix)) == report.version.encode()
    old = list(services.redis.scan_iter(match=f"{prefix}:customers:v*:b*", count=1000))
    assert old and all(
        key.decode().startswith(f"{prefix}:customers:{report.version}:") for key in old
    )


def test_an_unknown_customer_gets_segment_unknown_and_no_consent(services: Services) -> None:
    reader = CustomerProfiles(services.redis, services.settings.redis_prefix)
    profile = reader.get_many(["nobody"])["nobody"]
    assert (profile.segment, profile.sms_consent) == ("unknown", None)


def test_the_cache_stays_within_its_bound(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    write_sample_extract(path, SimulationConfig(customers=500, seed=1))
    load_customers(services.redis, services.settings.redis_prefix, path)
    reader = CustomerProfiles(services.redis, services.settings.redis_prefix, cache_size=100)
    with path.open() as handle:
        ids = [row["customer_id"] for row in csv.DictReader(handle)]
    for start in range(0, len(ids), 50):
        reader.get_many(ids[start : start + 50])
    assert reader.cached == 100


def test_bad_rows_are_reported_and_a_file_without_customer_id_is_refused(
    services: Services, tmp_path: Path
) -> None:
    prefix = services.settings.redis_prefix
    path = tmp_path / "bad.csv"
    path.write_text("customer_id,sms_consent\nC1,yes\n,yes\nC3,perhaps\n")
    report = load_customers(services.redis, prefix, path)
    assert (report.rows, report.bad_rows) == (1, 2)
    assert report.problems == [
        "row 3: customer_id is empty",
        "row 4: sms_consent 'perhaps' is not true/false/yes/no/1/0 or empty",
    ]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,segment\nC1,retail\n")
    with pytest.raises(ExtractError, match="no customer_id column"):
        load_customers(services.redis, prefix, wrong)


def test_the_journeys_segment_read_names_unknown_customers_and_survives_eviction(
    services: Services, tmp_path: Path
) -> None:
    prefix = load_two_customers(services, tmp_path / "extract.csv")
    reader = CustomerProfiles(services.redis, prefix, cache_size=1)
    expected = {"C1": "retail", "C2": "premium", "nobody": "unknown"}
    assert reader.segments(["C1", "C2", "nobody"]) == expected
    assert reader.cached == 1  # bounded: the others were evicted ...
    assert reader.segments(["C2", "C1"]) == {"C2": "premium", "C1": "retail"}  # ... and reread
