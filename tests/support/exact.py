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


def assert_journeys_exact(
    dump: dict[str, Any], expected: Figures, prefix: str, series_at_least: int = 1000
) -> None:
    """Every journey key family, the journeys line chart and the conversion rates.

    ``series_at_least``: entries the journeys stream must have (a day's run closes ~1,400
    minutes; the minutes within the series' delay of the input's end stay open).
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

    # The journeys stream (Grafana's line chart) has one entry per closed minute.
    series = dump[f"{prefix}:series:journeys"]
    assert len(series) > series_at_least, len(series)
    for entry_id, fields in series:
        minute_ms = int(entry_id.split("-")[0])
        label = datetime.fromtimestamp(minute_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")
        hash_fields = expected.hashes[f"{prefix}:minute:journeys:{label}"]
        assert int(fields["active_customers"]) == hash_fields["active_customers"], label

    for key, value in dump.items():
        if key.endswith(":conversion_rate"):
            base = key.removesuffix(":conversion_rate")
            for field, rate in value.items():
                sessions = expected.hashes[f"{base}:sessions"][field]
                conversions = expected.hashes[f"{base}:conversions"][field]
                assert abs(float(rate) - conversions / sessions) < 1e-6, (key, field)


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
