"""``clickstream campaigns backtest`` over a local archive folder and a customer extract."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flows.backtest import (
    Backtest,
    BacktestError,
    CampaignOutcomes,
    ExtractProfiles,
    backtest_archive,
    load_campaigns,
)
from flows.cli import app
from flows.offers_step import offers_config
from offers import Event, History, Offer, Profile, Trigger, campaign
from offers.api import Campaign
from offers.engine import OffersConfig, OffersShard
from offers.loader import CampaignSet
from offers.records import iso_ms
from sources.archive import ArchiveError, EventArchive, day_range
from state.records import Arrival
from state.settings import load_settings
from tests.support.backtest_scenario import (
    ATM,
    COUNTS,
    DAY,
    DAY_BEFORE,
    EXPECTED_BOTH_DAYS,
    EXPECTED_DAY,
    EXPECTED_TOTAL_DAY,
    LOAN,
    ROWS_DAY,
    by_campaign,
    write_customers,
    write_local_archive,
)
from tests.support.offers_reference import stable_share

SHIPPED = Path(__file__).resolve().parents[2] / "campaigns"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_local_archive(tmp_path / "archive")


@pytest.fixture
def customers(tmp_path: Path) -> Path:
    return write_customers(tmp_path / "customers.csv")


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["campaigns", "backtest", str(SHIPPED), *args])


def test_the_customers_are_in_the_groups_assumed() -> None:
    # The scenario's ids: only C013 is in a control group, nobody in the 2% global holdout.
    consenting = ("C001", "C003", "C008", "C009", "C013")
    assert all(stable_share("holdout", c) >= 0.02 for c in consenting)
    assert [c for c in consenting if stable_share(c, ATM) < 0.10] == ["C013"]
    assert stable_share("C003", LOAN) >= 0.10


def test_the_report_counts_each_campaigns_offers_after_consent_caps_and_cancels(
    archive: Path, customers: Path
) -> None:
    result = run_cli("--from", str(archive), "--days", "1", "--customers", str(customers), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert by_campaign(report) == EXPECTED_DAY
    assert {k: report["totals"][k] for k in COUNTS} == EXPECTED_TOTAL_DAY
    # Highest priority first, as the engine tries them.
    assert [c["campaign_id"] for c in report["campaigns"]][:2] == [
        ATM,
        "rejected-transfer-overdraft",
    ]
    assert (report["first_day"], report["last_day"]) == (DAY, DAY)
    assert report["rows"] == ROWS_DAY
    assert (report["without_customer"], report["duplicates"]) == (1, 1)
    assert report["customer_events"] == ROWS_DAY - 2
    assert report["first_event"] == f"{DAY}T08:00:00.000Z"
    assert report["last_event"] == f"{DAY}T20:30:00.000Z"


def test_days_and_dates_choose_the_dt_partitions(archive: Path, customers: Path) -> None:
    both = run_cli("--from", str(archive), "--days", "2", "--customers", str(customers), "--json")
    assert both.exit_code == 0, both.output
    assert by_campaign(json.loads(both.stdout)) == EXPECTED_BOTH_DAYS

    day_before = run_cli(
        "--from", str(archive), "--since", DAY_BEFORE, "--until", DAY_BEFORE,
        "--customers", str(customers), "--json",
    )  # fmt: skip
    assert day_before.exit_code == 0, day_before.output
    report = json.loads(day_before.stdout)
    assert by_campaign(report)[ATM]["sent"] == report["totals"]["sent"] == 1
    assert report["totals"]["matched"] == 1


def table_args(archive: Path, customers: Path) -> list[str]:
    return ["campaigns", "backtest", str(SHIPPED), "--from", str(archive), "--days", "1",
            "--customers", str(customers)]  # fmt: skip


def test_the_table_shows_every_campaign_and_the_totals(archive: Path, customers: Path) -> None:
    result = CliRunner().invoke(app, table_args(archive, customers), env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[1:]
        for line in result.stdout.splitlines()
        if (cells := [c.strip() for c in line.strip("│┃ ").split("│")]) and len(cells) == 13
    }
    #             matched sent control holdout no_consent cooldown freq daily lower cancel exp err
    assert rows[ATM] == ["6", "2", "1", "0", "2", "1", "0", "0", "0", "0", "0", "0"]
    assert rows[LOAN] == ["1", "0", "0", "0", "0", "0", "0", "0", "0", "1", "0", "0"]
    assert rows["total"] == ["8", "2", "1", "0", "3", "1", "0", "0", "0", "1", "0", "0"]
    assert len(rows) == 6 + 1
    assert f"note: {ATM}: 1 offer held until the quiet hours ended" in result.stdout
    assert (
        f"{archive}: 12 events in 6 objects (4 hours, {DAY}T08:00:00.000Z .. "
        f"{DAY}T20:30:00.000Z); 10 of known customers, 1 without a customer id, "
        "1 repeated event id skipped"
    ) in result.stdout


def test_a_narrow_console_gets_a_line_per_campaign(archive: Path, customers: Path) -> None:
    result = CliRunner().invoke(app, table_args(archive, customers), env={"COLUMNS": "100"})

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        f"{ATM}: 6 matched, 2 sent, 1 held out (control_group 1), "
        "3 suppressed (no_consent 2, cooldown 1)"
    ) in lines
    assert f"{LOAN}: 1 matched, 0 sent, 1 suppressed (cancelled 1)" in lines
    assert (
        "total: 8 matched, 2 sent, 1 held out (control_group 1), "
        "5 suppressed (no_consent 3, cooldown 1, cancelled 1)"
    ) in lines


def test_the_logic_runs_without_the_cli(archive: Path, customers: Path) -> None:
    campaigns = load_campaigns(SHIPPED, date(2026, 1, 15))
    events = EventArchive(str(archive))
    report = backtest_archive(
        campaigns,
        events,
        (date(2026, 1, 14), date(2026, 1, 15)),
        ExtractProfiles(customers),
        offers_config(load_settings()),
        campaigns_dir=SHIPPED,
    )
    outcomes = {c.campaign_id: c for c in report.campaigns}
    assert (outcomes[ATM].sent, outcomes[ATM].held_out["control_group"]) == (3, 1)
    assert outcomes[LOAN].suppressed["cancelled"] == 1
    assert report.totals.sent == 3


def test_a_campaign_that_has_not_started_runs_only_with_ignore_dates(
    tmp_path: Path, archive: Path, customers: Path
) -> None:
    folder = tmp_path / "campaigns"
    shutil.copytree(SHIPPED, folder)
    source = folder / "atm_decline_personal_loan.py"
    source.write_text(
        source.read_text().replace('valid_from="2026-01-01"', 'valid_from="2026-06-01"')
    )
    args = ["campaigns", "backtest", str(folder), "--from", str(archive), "--days", "1",
            "--customers", str(customers), "--json"]  # fmt: skip

    as_written = CliRunner().invoke(app, args)
    anyway = CliRunner().invoke(app, [*args, "--ignore-dates"])

    assert as_written.exit_code == anyway.exit_code == 0, as_written.output + anyway.output
    assert by_campaign(json.loads(as_written.stdout))[ATM]["matched"] == 0
    assert by_campaign(json.loads(anyway.stdout))[ATM] == EXPECTED_DAY[ATM]


def test_a_folder_with_campaign_errors_is_refused(
    tmp_path: Path, archive: Path, customers: Path
) -> None:
    folder = tmp_path / "campaigns"
    shutil.copytree(SHIPPED, folder)
    (folder / "broken.py").write_text("from offers import campaign\nLIMIT = {}['gold']\n")

    result = CliRunner().invoke(
        app,
        ["campaigns", "backtest", str(folder), "--from", str(archive), "--customers",
         str(customers)],
        env={"COLUMNS": "300"},
    )  # fmt: skip

    assert result.exit_code == 1
    assert f"{folder} has 1 campaign error(s); fix them first" in result.stderr
    assert f"{folder / 'broken.py'} (line 2): KeyError: 'gold'" in result.stderr


def test_a_range_without_events_is_an_error_that_says_what_the_archive_holds(
    archive: Path, customers: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["campaigns", "backtest", str(SHIPPED), "--from", str(archive), "--since", "2026-02-01",
         "--until", "2026-02-03", "--customers", str(customers)],
        env={"COLUMNS": "300"},
    )  # fmt: skip

    assert result.exit_code == 1
    assert (
        f"{archive}/events has no events from 2026-02-01 to 2026-02-03 "
        f"(it holds {DAY_BEFORE} .. {DAY})" in result.stderr
    )


def test_an_empty_folder_or_a_missing_extract_is_an_error(tmp_path: Path, customers: Path) -> None:
    empty = run_cli("--from", str(tmp_path / "nothing"), "--customers", str(customers))
    assert empty.exit_code == 1
    assert "the archive holds no events (no dt= partition)" in empty.stderr

    missing = run_cli("--from", str(tmp_path), "--customers", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1
    assert "customer extract not found" in missing.stderr


def test_day_range() -> None:
    present = [date(2026, 1, 10), date(2026, 1, 14), date(2026, 1, 15)]
    assert day_range(present, days=2) == (date(2026, 1, 14), date(2026, 1, 15))
    assert day_range(present) == (date(2026, 1, 9), date(2026, 1, 15))
    assert day_range(present, days=1, until=date(2026, 1, 10)) == (
        date(2026, 1, 10), date(2026, 1, 10),
    )  # fmt: skip
    assert day_range([], since=date(2026, 1, 1), until=date(2026, 1, 2)) == (
        date(2026, 1, 1), date(2026, 1, 2),
    )  # fmt: skip
    with pytest.raises(ArchiveError, match="give --days or --since, not both"):
        day_range(present, days=1, since=date(2026, 1, 1))
    with pytest.raises(ArchiveError, match="backwards"):
        day_range(present, since=date(2026, 1, 16))


def test_an_extract_without_customer_id_is_refused(tmp_path: Path) -> None:
    extract = tmp_path / "bad.csv"
    extract.write_text("id,segment\n1,retail\n")
    with pytest.raises(BacktestError, match="has no customer_id column"):
        ExtractProfiles(extract)


# --- the driver against the plainest one: one event at a time ----------------------------------

BASE_MS = 1_768_464_000_000  # 2026-01-15T08:00Z, 09:00 in Warsaw
ATM_TRIGGER = Trigger("transaction", channel="atm")


def short_campaign(campaign_id: str, priority: int, delay: str, cooldown: str) -> Campaign:
    @campaign(
        id=campaign_id,
        version=1,
        priority=priority,
        send_delay=delay,
        cooldown=cooldown,
        daily_cap=2,
        template="{first_name}: {limit}",
        triggers=[ATM_TRIGGER],
        cancel_if=[Trigger("conversion")],
    )
    def rule(event: Event, profile: Profile, history: History) -> Offer:
        return Offer(limit=history.count("transaction"))

    return rule


CAMPAIGNS = CampaignSet(
    [short_campaign("fast", 2, "20s", "0s"), short_campaign("slow", 1, "90s", "30s")]
)
CONFIG = OffersConfig(daily_cap=2, max_offers_per_event=2, holdout_share=0.2)


def an_event(customer: str, second: int, kind: str, number: int) -> Arrival:
    body = {
        "event_id": f"{customer}-{number:03d}",
        "event_time": iso_ms(BASE_MS + second * 1000),
        "event_type": "transaction" if kind == "atm" else "conversion",
        "channel": "atm" if kind == "atm" else "web",
        "customer_id": customer,
        "app": "x", "app_version": "1", "os": "x", "os_version": "1",
    }  # fmt: skip
    event = msgspec.convert(body, Event)
    return Arrival(event, BASE_MS + second * 1000, "t", 0, number, 0)


def one_at_a_time(arrivals: list[Arrival]) -> dict[str, CampaignOutcomes]:
    """Before each event, release what is due before it; then decide on the event alone."""
    shard = OffersShard(CONFIG)
    counts = {
        c.id: CampaignOutcomes(
            campaign_id=c.id, version=c.version, priority=c.priority, channel=c.channel
        )
        for c in CAMPAIGNS.campaigns
    }
    low = BASE_MS
    results = []
    for arrival in sorted(arrivals, key=lambda a: (a.event_ms, a.event.event_id)):
        low = max(low, arrival.event_ms - 1)
        results.append(shard.process([], CAMPAIGNS, consenting, low, low))
        results.append(shard.process([arrival], CAMPAIGNS, consenting, low, low))
    results.append(shard.release(CAMPAIGNS, consenting, low, everything=True))
    for result in results:
        for decision in result.decisions:
            counts[decision.campaign_id].count(decision)
    return counts


def consenting(ids: Any) -> dict[str, Profile]:
    return {i: Profile(i, first_name="Ola", sms_consent=True) for i in ids}


events = st.lists(
    st.tuples(
        st.sampled_from(["C1", "C2", "C3"]),
        st.integers(0, 400),
        st.sampled_from(["atm", "atm", "conversion"]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_the_backtest_decides_as_if_each_event_came_alone(
    drawn: list[tuple[str, int, str]],
) -> None:
    arrivals = [an_event(c, second, kind, n) for n, (c, second, kind) in enumerate(drawn)]
    ordered = sorted(arrivals, key=lambda a: (a.event_ms, a.event.event_id))
    backtest = Backtest(CAMPAIGNS, consenting, CONFIG)
    # Fed in two parts (two hours of the archive, say).
    backtest.feed(ordered[: len(ordered) // 2])
    backtest.feed(ordered[len(ordered) // 2 :])
    backtest.finish()

    expected = one_at_a_time(arrivals)
    assert backtest.outcomes == expected
    assert sum(o.matched for o in expected.values()) == sum(
        o.sent + sum(o.held_out.values()) + sum(o.suppressed.values()) for o in expected.values()
    )
