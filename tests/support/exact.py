"""What "exact" means for a run of the job: every journey figure, minute and closed session equals
the definitions computed independently from the input, and two runs of the same input (a file,
a backlog, a cluster) leave the same Redis keys and archive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support.journey_reference import Figures

JOURNEY_FAMILIES = (":day:", ":days", ":month:", ":minute:journeys:")


def ints(value: Any) -> dict[str, int] | None:
    """A hash or a sorted set read back, as field → int."""
    if value is None:
        return None
    if isinstance(value, list):  # a sorted set read back as (member, score) pairs
        return {m: int(float(s)) for m, s in value}
    return {k: int(v) for k, v in value.items()}


def assert_journeys_exact(dump: dict[str, Any], expected: Figures, prefix: str) -> None:
    """Every journey key family, the journeys line chart and the conversion rates, after a run
    that read its input to the end (where every minute is final).
    """
    for key, fields in expected.hashes.items():
        assert ints(dump.get(key)) == dict(fields), (key, ints(dump.get(key)), dict(fields))
    for key, members in expected.zsets.items():
        assert ints(dump.get(key)) == dict(members), (key, ints(dump.get(key)), dict(members))
    written = {
        k
        for k in dump
        if any(f in k for f in JOURNEY_FAMILIES)
        and not k.endswith(("conversion_rate", "completion_rate"))
    }
    assert written == set(expected.hashes) | set(expected.zsets)

    # The journeys stream (Grafana's line chart): at the end of the input every minute is
    # final, so it has one entry for each minute with figures, equal to the minute's hash.
    minute_prefix = f"{prefix}:minute:journeys:"
    minutes = {
        key.removeprefix(minute_prefix): fields
        for key, fields in expected.hashes.items()
        if key.startswith(minute_prefix)
    }
    entries = {
        _minute_label(entry_id): ints(fields) or {}
        for entry_id, fields in dump[f"{prefix}:series:journeys"]
    }
    assert set(entries) == set(minutes), (
        sorted(set(minutes) - set(entries))[-5:],
        sorted(set(entries) - set(minutes))[:5],
    )
    for label, entry in entries.items():
        want = {f: n for f, n in minutes[label].items() if n}
        assert {f: n for f, n in entry.items() if n} == want, (label, entry, want)

    for key, value in dump.items():
        if key.endswith(":conversion_rate"):
            base = key.removesuffix(":conversion_rate")
            for field, rate in value.items():
                sessions = expected.hashes[f"{base}:sessions"][field]
                conversions = expected.hashes[f"{base}:conversions"][field]
                assert abs(float(rate) - conversions / sessions) < 1e-6, (key, field)


def assert_minute_series_complete(dump: dict[str, Any], prefix: str) -> None:
    """After a run that read its input to the end, the events-by-type line chart has an entry
    for every minute with events, with the minute's counts and their total.
    """
    minute_prefix = f"{prefix}:minute:events_by_type:"
    minutes = {
        key.removeprefix(minute_prefix): ints(fields) or {}
        for key, fields in dump.items()
        # A stream's entry ids start at 1970: older minutes (the contract accepts year 1) are in
        # their hashes only.
        if key.startswith(minute_prefix) and key.removeprefix(minute_prefix) >= "1970"
    }
    entries = {
        _minute_label(entry_id): ints(fields) or {}
        for entry_id, fields in dump[f"{prefix}:series:events_by_type"]
    }
    assert set(entries) == set(minutes), sorted(set(minutes) ^ set(entries))[:5]
    for label, counts in minutes.items():
        entry = entries[label]
        assert entry.pop("total") == sum(counts.values()), label
        assert {t: n for t, n in entry.items() if n} == counts, label


def _minute_label(entry_id: str) -> str:
    """The minute (``YYYY-MM-DDTHH:MM``, UTC) of a series entry id (its start in epoch ms)."""
    minute_ms = int(entry_id.split("-", maxsplit=1)[0])
    return datetime.fromtimestamp(minute_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def assert_sessions_exact(archived: list[dict[str, Any]], expected: Figures) -> None:
    """The archive's sessions table holds every session once, as the definitions give them."""
    got = sorted((r["session_id"], r["identity"], r["event_count"]) for r in archived)
    want = sorted((s.sid, s.identity, len(s.events)) for s in expected.session_list)
    assert got == want, (sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5])


def figures(dump: dict[str, Any]) -> dict[str, Any]:
    """A Redis dump without the job's operational keys (``<prefix>:ops:``, by the wall clock),
    which differ from one run of the same input to the next by design."""
    return {key: value for key, value in dump.items() if ":ops:" not in key}


def same_keys(dump: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A Redis dump's figures with its run's prefix taken off the keys, to compare runs."""
    return {key.removeprefix(prefix): value for key, value in figures(dump).items()}
