"""A day's run with offers on checked whole: every figure, session and event row, every offer
and decision, against the independent computation from the input (what an uninterrupted run
gives), for the fault and rescaling tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import msgspec

from sources.customer_sample import sample_rows
from sources.simulator import SimulatedMessage, SimulationConfig
from state.settings import Settings
from tests.conftest import Services
from tests.support.exact import assert_journeys_exact, assert_sessions_exact
from tests.support.journey_reference import figures
from tests.support.offers_reference import expected_offers
from tests.support.readback import archive_rows, redis_dump, topic_values
from tests.support.reference import expected_from
from tests.support.shipped_campaigns import SPECS


def assert_day_with_offers_exact(
    services: Services,
    settings: Settings,
    messages: Sequence[SimulatedMessage],
    config: SimulationConfig,
    segment_of: dict[str, str],
    *,
    holdout_share: float = 0.05,
) -> None:
    """Redis figures, the sessions and events tables (each event once), the offer ids on the
    topic (none twice) and the decisions (each once in the offers table)."""
    valid = expected_from([m.value for m in messages]).valid_unique
    expected = figures(valid, segment_of, settings.redis_prefix)
    dump = redis_dump(services.redis, settings.redis_prefix)
    assert int(dump[f"{settings.redis_prefix}:pipeline"]["valid"]) == len(valid)
    assert_journeys_exact(dump, expected, settings.redis_prefix)
    assert_sessions_exact(archive_rows(services.s3, settings, "sessions"), expected)
    events = archive_rows(services.s3, settings, "events")
    assert Counter(r["event_id"] for r in events).most_common(1)[0][1] == 1
    assert {r["event_id"] for r in events} == set(valid)

    customers = {row["customer_id"]: row for row in sample_rows(config)}
    offers_expected = expected_offers(
        list(valid.values()), customers, SPECS, holdout_share=holdout_share,
        global_daily_cap=3, timezone="Europe/Warsaw",
    )  # fmt: skip
    assert offers_expected.sent, "the day triggers no offer: the test would prove nothing"
    offers = [msgspec.json.decode(v) for v in topic_values(settings, settings.offers_topic)]
    assert not [i for i, n in Counter(o["offer_id"] for o in offers).items() if n > 1]
    assert {o["offer_id"] for o in offers} == set(offers_expected.sent)
    decisions = {
        msgspec.json.decode(v)["decision_id"]
        for v in topic_values(settings, settings.offer_decisions_topic)
    }
    rows = archive_rows(services.s3, settings, "offers")
    assert Counter(r["decision_id"] for r in rows).most_common(1)[0][1] == 1
    assert {r["decision_id"] for r in rows} == decisions
