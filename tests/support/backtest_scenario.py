"""Hand-made archived events with known offer outcomes, for the campaigns backtest.

Two days of the events table, written by the job's own Parquet writer in the archive's layout,
and a customer extract. What the shipped campaigns (campaigns/) must make of them, with the
job's default settings, is in ``EXPECTED_*`` below; each case says why.

Customers (control groups and the 2% global holdout are stable hashes; the ids are chosen so that
only C013 is in a control group, checked by ``test_the_customers_are_in_the_groups_assumed``):

- C001 consents, no loan: two declined ATM withdrawals 10 min apart → 1 sent + 1 cooldown;
  the first is also archived twice (a repeated event id is read once);
- C002 refused SMS: a declined withdrawal → no_consent;
- C003 consents to SMS, not to push: a first mobile login → the onboarding push is no_consent;
  then starts the loan form and submits it 5 min later → the call-back is cancelled (the submit
  sits in an earlier object than the start: only event-time order gets this right);
- C005 is not in the extract: a declined withdrawal → no_consent (unknown fails closed);
- C006 already has a personal loan: a declined withdrawal → the rule says no, nothing counted;
- C009 consents: a declined withdrawal at 21:30 Warsaw → held until 08:00 the next morning (after
  the last event), then sent;
- C013 consents but is in the ATM campaign's control group → held_out;
- an anonymous declined withdrawal (no customer id) is left out;
- C008 consents: a declined withdrawal the day before → sent, when that day is in the range.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from sinks.parquet_archive import events_table, parquet_bytes
from state.archive_layout import EVENTS_TABLE, hive_partition
from state.archive_layout import events_object_name as object_stem
from state.contract import Event
from state.records import ArchiveObject, Arrival

DAY_BEFORE = "2026-01-14"
DAY = "2026-01-15"
TOPIC = "bank.events"
ATM = "atm-decline-personal-loan"
LOAN = "abandoned-loan-callback"
ONBOARDING = "mobile-onboarding"
LOAN_FORM = "loan_application_form"
CUSTOMER_COLUMNS = ("customer_id", "segment", "sms_consent", "phone", "first_name", "products")
CUSTOMERS = (
    ("C001", "retail", "true", "+48500100001", "Anna", "current_account"),
    ("C002", "retail", "false", "+48500100002", "Piotr", "current_account"),
    ("C003", "premium", "yes", "+48500100003", "Ewa", "current_account;savings"),
    ("C006", "retail", "true", "+48500100006", "Jan", "current_account;personal_loan"),
    ("C008", "retail", "true", "+48500100008", "Zofia", "current_account"),
    ("C009", "private", "1", "+48500100009", "Marek", "current_account"),
    ("C013", "retail", "true", "+48500100013", "Magdalena", "current_account"),
)


def _at(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00").astimezone(UTC)


def _event(body: dict[str, Any]) -> Event:
    return msgspec.json.decode(msgspec.json.encode(body), type=Event)


def atm_decline(event_id: str, at: datetime, customer: str | None) -> Event:
    """A withdrawal declined for insufficient funds (``customer`` None: an anonymous card)."""
    return _event(
        {
            "event_id": event_id,
            "event_time": at.isoformat(),
            "event_type": "transaction",
            "channel": "atm",
            "customer_id": customer,
            "device_id": None if customer else "ATM-0042",
            "app": "atm",
            "app_version": "7.2",
            "os": "atm-os",
            "os_version": "3",
            "properties": {
                "kind": "atm_withdrawal",
                "status": "declined",
                "reason": "insufficient_funds",
                "amount": 400,
            },
        }
    )


def mobile(event_id: str, at: datetime, customer: str, event_type: str, **extra: Any) -> Event:
    """An event of the mobile app."""
    return _event(
        {
            "event_id": event_id,
            "event_time": at.isoformat(),
            "event_type": event_type,
            "channel": "mobile",
            "customer_id": customer,
            "device_id": f"D-{customer}",
            "app": "mobile-banking",
            "app_version": "5.14.0",
            "os": "Android",
            "os_version": "14",
            **extra,
        }
    )


def archived_objects() -> list[list[Event]]:
    """The events of each archive object, in the order they sit in it (not event time)."""
    return [
        [  # the day before
            atm_decline("atm-c008", _at(DAY_BEFORE, "08:30"), "C008"),
        ],
        [  # the day: a first object of its 08:00 and 10:00 hours
            atm_decline("atm-c001-a", _at(DAY, "08:00"), "C001"),
            atm_decline("atm-c002", _at(DAY, "08:00"), "C002"),
            atm_decline("atm-c013", _at(DAY, "08:05"), "C013"),
            atm_decline("atm-c005", _at(DAY, "08:06"), "C005"),
            atm_decline("atm-anonymous", _at(DAY, "08:07"), None),
            mobile("form-submit-c003", _at(DAY, "10:05"), "C003", "form_submit", form=LOAN_FORM),
        ],
        [  # a second object of the same hours, written later
            atm_decline("atm-c001-a", _at(DAY, "08:00"), "C001"),
            atm_decline("atm-c001-b", _at(DAY, "08:10"), "C001"),
            atm_decline("atm-c006", _at(DAY, "08:20"), "C006"),
            mobile("login-c003", _at(DAY, "09:59"), "C003", "login", screen="login"),
            mobile("form-start-c003", _at(DAY, "10:00"), "C003", "form_start", form=LOAN_FORM),
            atm_decline("atm-c009", _at(DAY, "20:30"), "C009"),
        ],
    ]


def archive_objects() -> list[ArchiveObject]:
    """The archive objects as the job names them: one per object and hour partition."""
    objects = []
    for number, events in enumerate(archived_objects()):
        by_hour: dict[tuple[str, str], list[Arrival]] = defaultdict(list)
        for offset, event in enumerate(events, start=number * 100):
            event_ms = (event.event_time - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
                milliseconds=1
            )
            arrival = Arrival(event, event_ms, TOPIC, 0, offset, event_ms + 250)
            by_hour[hive_partition(event_ms)].append(arrival)
        for (dt, hour), rows in sorted(by_hour.items()):
            stem = object_stem(TOPIC, 0, rows[0].offset)
            objects.append(ArchiveObject(EVENTS_TABLE, dt, hour, stem, rows))
    return objects


def write_local_archive(root: Path) -> Path:
    """The archive in a local folder (``<root>/events/dt=.../hour=.../*.parquet``)."""
    for obj in archive_objects():
        target = root / obj.relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(parquet_bytes(events_table(obj.rows)))
    return root


def write_customers(path: Path) -> Path:
    """The customer extract as CSV."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CUSTOMER_COLUMNS)
        writer.writerows(CUSTOMERS)
    return path


COUNTS = ("matched", "sent", "held_out", "suppressed", "quiet_hours", "rule_errors")


def by_campaign(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The counts of each campaign in a report's JSON, by campaign id."""
    return {c["campaign_id"]: {k: c[k] for k in COUNTS} for c in report["campaigns"]}


def outcomes(
    matched: int = 0,
    sent: int = 0,
    control_group: int = 0,
    quiet_hours: int = 0,
    **suppressed: int,
) -> dict[str, Any]:
    """One campaign's expected counts in the report's JSON (every other count 0)."""
    reasons = ("no_consent", "cooldown", "frequency_cap", "daily_cap", "lower_priority",
               "cancelled", "expired")  # fmt: skip
    return {
        "matched": matched,
        "sent": sent,
        "held_out": {"control_group": control_group, "global_holdout": 0},
        "suppressed": {reason: suppressed.get(reason, 0) for reason in reasons},
        "quiet_hours": quiet_hours,
        "rule_errors": 0,
    }


EXPECTED_DAY = {
    ATM: outcomes(6, sent=2, control_group=1, quiet_hours=1, no_consent=2, cooldown=1),
    LOAN: outcomes(1, cancelled=1),
    ONBOARDING: outcomes(1, no_consent=1),
    "branch-deposit-savings": outcomes(),
    "card-abroad-travel-card": outcomes(),
    "rejected-transfer-overdraft": outcomes(),
}
"""``--days 1``: the newest day."""
EXPECTED_TOTAL_DAY = outcomes(
    8, sent=2, control_group=1, quiet_hours=1, no_consent=3, cooldown=1, cancelled=1
)
EXPECTED_BOTH_DAYS = {
    **EXPECTED_DAY,
    ATM: outcomes(7, sent=3, control_group=1, quiet_hours=1, no_consent=2, cooldown=1),
}
"""``--days 2``: C008's offer of the day before too."""
ROWS_DAY = 12
"""Rows of the day's objects, the repeated one included."""
