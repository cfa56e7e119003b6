"""Every rule of the offer engine, on hand-made events (PRODUCT.md, "Offers")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import msgspec
import pytest
from hypothesis import strategies as st

from offers import Event, History, Offer, Profile, Trigger, campaign
from offers.api import Campaign
from offers.engine import OffersConfig, OffersResult, OffersShard
from offers.loader import CampaignSet
from offers.records import Decision, offer_id
from state.records import Arrival

# 09:00 in Warsaw: outside the quiet hours.
BASE = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
ATM_DECLINE = Trigger("transaction", channel="atm", properties={"status": "declined"})


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def atm(event_id: str, at: datetime, customer: str = "C1", **props: Any) -> Arrival:
    body = {
        "event_id": event_id,
        "event_time": at.isoformat(),
        "event_type": "transaction",
        "channel": "atm",
        "customer_id": customer,
        "app": "atm",
        "app_version": "1",
        "os": "atm-os",
        "os_version": "1",
        "properties": {"kind": "atm_withdrawal", "status": "declined", **props},
    }
    event = msgspec.json.decode(msgspec.json.encode(body), type=Event)
    return Arrival(event, ms(at), "bank.events", 0, 0, ms(at))


def app_event(
    event_id: str, at: datetime, event_type: str, customer: str = "C1", **kw: Any
) -> Arrival:
    body = {
        "event_id": event_id,
        "event_time": at.isoformat(),
        "event_type": event_type,
        "channel": "mobile",
        "customer_id": customer,
        "device_id": "D1",
        "app": "mobile-banking",
        "app_version": "5.14.0",
        "os": "Android",
        "os_version": "14",
        **kw,
    }
    event = msgspec.json.decode(msgspec.json.encode(body), type=Event)
    return Arrival(event, ms(at), "bank.events", 0, 0, ms(at))


def loan_campaign(**overrides: Any) -> Campaign:
    options: dict[str, Any] = {
        "id": "loan",
        "version": 2,
        "priority": 50,
        "send_delay": "45s",
        "cooldown": "1h",
        "daily_cap": 1,
        "template": "{first_name}: a loan of {limit}",
        "triggers": [ATM_DECLINE],
    }
    options.update(overrides)

    @campaign(**options)
    def rule(event: Event, profile: Profile, history: History) -> Offer:
        return Offer(limit=5000)

    return rule


class Engine:
    """One shard, its campaigns and its customers' profiles, driven by event time."""

    def __init__(
        self,
        campaigns: Iterable[Campaign],
        profiles: dict[str, Profile] | None = None,
        **config: Any,
    ) -> None:
        self.campaigns = CampaignSet(campaigns)
        default = {"C1": Profile("C1", first_name="Ola", sms_consent=True)}
        self.profiles = default if profiles is None else profiles
        # A generous budget: a loaded test machine must not turn a quick rule into a timeout.
        config.setdefault("rule_timeout_ms", 2000)
        self.shard = OffersShard(OffersConfig(**config))
        self.decisions: list[Decision] = []
        self.sent: list[Any] = []

    def lookup(self, ids: Iterable[str]) -> dict[str, Profile]:
        return {i: self.profiles.get(i, Profile(i)) for i in ids}

    def feed(self, *arrivals: Arrival, low: datetime | None = None) -> OffersResult:
        """Process events; the input has got as far as ``low`` (default: the newest event)."""
        newest = max((a.event_ms for a in arrivals), default=0)
        low_ms = ms(low) if low is not None else newest
        result = self.shard.process(list(arrivals), self.campaigns, self.lookup, low_ms, newest)
        self._keep(result)
        return result

    def advance(self, to: datetime) -> OffersResult:
        """The input moves on to ``to`` without events of these customers."""
        return self.feed(low=to)

    def _keep(self, result: OffersResult) -> None:
        self.decisions.extend(result.decisions)
        self.sent.extend(result.offers)

    def outcomes(self, stage: str | None = None) -> list[tuple[str, str, str | None]]:
        return [
            (d.campaign_id, d.outcome, d.reason)
            for d in self.decisions
            if stage is None or d.stage == stage
        ]


def test_an_offer_waits_for_its_delay_then_goes_out_with_a_stable_id() -> None:
    engine = Engine([loan_campaign()])
    engine.feed(atm("e1", BASE))
    assert engine.sent == []
    assert engine.outcomes() == [("loan", "pending", "send_delay")]
    engine.advance(BASE + timedelta(seconds=44))
    assert engine.sent == []
    engine.advance(BASE + timedelta(seconds=45))
    [offer] = engine.sent
    assert offer.offer_id == offer_id("C1", "loan", "e1")
    assert (offer.campaign_id, offer.campaign_version, offer.customer_id) == ("loan", 2, "C1")
    assert offer.text == "Ola: a loan of 5000"
    assert offer.params == {"limit": 5000}
    assert offer.send_at == "2026-01-15T08:00:45.000Z"
    assert offer.trigger_time == "2026-01-15T08:00:00.000Z"
    assert engine.outcomes("release") == [("loan", "sent", None)]


@pytest.mark.parametrize(
    "profile",
    [Profile("C1", sms_consent=False), Profile("C1", sms_consent=None), None],
    ids=["refused", "unknown", "not-in-extract"],
)
def test_consent_fails_closed(profile: Profile | None) -> None:
    engine = Engine([loan_campaign()], profiles={} if profile is None else {"C1": profile})
    engine.feed(atm("e1", BASE))
    engine.advance(BASE + timedelta(minutes=5))
    assert engine.sent == []
    assert engine.outcomes() == [("loan", "suppressed", "no_consent")]


def test_push_needs_its_own_consent() -> None:
    profiles = {
        "C1": Profile("C1", sms_consent=True),
        "C2": Profile("C2", sms_consent=False, extra={"push_consent": "yes"}),
    }
    engine = Engine([loan_campaign(channel="push", send_delay=0)], profiles=profiles)
    engine.feed(atm("e1", BASE), atm("e2", BASE, customer="C2"))
    assert [o.customer_id for o in engine.sent] == ["C2"]


def test_consent_withdrawn_during_the_delay_stops_the_offer() -> None:
    engine = Engine([loan_campaign()])
    engine.feed(atm("e1", BASE))
    engine.profiles["C1"] = Profile("C1", sms_consent=False)
    engine.advance(BASE + timedelta(minutes=1))
    assert engine.sent == []
    assert engine.outcomes("release") == [("loan", "suppressed", "no_consent")]


def test_a_conversion_during_the_delay_cancels_the_offer_and_frees_the_cap() -> None:
    engine = Engine([loan_campaign(cooldown=0)])
    engine.feed(atm("e1", BASE))
    engine.feed(app_event("c1", BASE + timedelta(seconds=20), "conversion"))
    engine.advance(BASE + timedelta(minutes=1))
    assert engine.sent == []
    assert engine.outcomes("release") == [("loan", "suppressed", "cancelled")]
    # The cancelled offer did not use the day's only slot.
    engine.feed(atm("e2", BASE + timedelta(minutes=2)))
    engine.advance(BASE + timedelta(minutes=3))
    assert [o.trigger_event_id for o in engine.sent] == ["e2"]


def test_a_conversion_in_the_same_batch_as_its_trigger_cancels_whatever_the_order() -> None:
    # An identity shard's events come grouped by the shard they were decided in, not in time
    # order: the conversion (01:36) can come before the trigger (01:12) it follows.
    trigger, conversion = BASE, BASE + timedelta(minutes=24)
    engine = Engine([loan_campaign(send_delay="6h")])
    engine.feed(app_event("c1", conversion, "conversion"), atm("e1", trigger))
    engine.advance(BASE + timedelta(hours=7))
    assert engine.sent == []
    assert engine.outcomes("release") == [("loan", "suppressed", "cancelled")]


def test_a_conversion_read_a_batch_before_its_trigger_cancels_the_offer() -> None:
    # The conversion's partition was read first; the trigger arrives in a later batch.
    engine = Engine([loan_campaign(send_delay="6h")])
    engine.feed(app_event("c1", BASE + timedelta(minutes=24), "conversion"), low=BASE)
    engine.feed(atm("e1", BASE), low=BASE)
    engine.advance(BASE + timedelta(hours=7))
    assert engine.sent == []
    assert engine.outcomes("release") == [("loan", "suppressed", "cancelled")]
    # A conversion before the trigger cancels nothing.
    engine.feed(app_event("c2", BASE + timedelta(hours=8), "conversion"))
    engine.feed(atm("e2", BASE + timedelta(hours=8, minutes=1)))
    engine.advance(BASE + timedelta(hours=30))  # past the send time and the quiet hours
    assert [o.trigger_event_id for o in engine.sent] == ["e2"]


def test_a_conversion_after_the_send_time_does_not_cancel() -> None:
    engine = Engine([loan_campaign()])
    engine.feed(atm("e1", BASE))
    # The conversion happened after send_at but arrives before the input passed send_at.
    engine.feed(
        app_event("c1", BASE + timedelta(seconds=50), "conversion"),
        low=BASE + timedelta(seconds=10),
    )
    engine.advance(BASE + timedelta(minutes=1))
    assert len(engine.sent) == 1


def test_cooldown_per_campaign() -> None:
    engine = Engine([loan_campaign(cooldown="1h", daily_cap=5)])
    engine.feed(atm("e1", BASE))
    engine.feed(atm("e2", BASE + timedelta(minutes=59)))
    engine.feed(atm("e3", BASE + timedelta(minutes=60)))
    engine.advance(BASE + timedelta(hours=2))
    assert [o.trigger_event_id for o in engine.sent] == ["e1", "e3"]
    assert ("loan", "suppressed", "cooldown") in engine.outcomes("match")


def test_daily_cap_per_campaign_resets_at_midnight_in_the_banks_time_zone() -> None:
    # 22:50 UTC on 15 Jan is 23:50 in Warsaw; 23:05 UTC is already 16 Jan there.
    night = datetime(2026, 1, 15, 22, 50, tzinfo=UTC)
    engine = Engine([loan_campaign(cooldown=0, daily_cap=1)], quiet_hours=None)
    engine.feed(atm("e1", night))
    engine.feed(atm("e2", night + timedelta(minutes=5)))  # 23:55 local: same day, capped
    engine.feed(atm("e3", night + timedelta(minutes=15)))  # 00:05 local: a new day
    engine.advance(night + timedelta(hours=1))
    assert [o.trigger_event_id for o in engine.sent] == ["e1", "e3"]
    assert engine.outcomes("match")[1] == ("loan", "suppressed", "frequency_cap")


def test_midnight_in_utc_is_not_the_banks_midnight() -> None:
    # 23:30 and 00:30 UTC are 00:30 and 01:30 in Warsaw: the same bank day.
    late = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
    engine = Engine([loan_campaign(cooldown=0, daily_cap=1)], quiet_hours=None)
    engine.feed(atm("e1", late))
    engine.feed(atm("e2", late + timedelta(hours=1)))
    engine.advance(late + timedelta(hours=2))
    assert [o.trigger_event_id for o in engine.sent] == ["e1"]


def test_global_daily_cap_over_all_campaigns() -> None:
    campaigns = [loan_campaign(id=f"c{n}", cooldown=0, daily_cap=5, send_delay=0) for n in range(3)]
    engine = Engine(campaigns, daily_cap=2, max_offers_per_event=3)
    engine.feed(atm("e1", BASE))
    assert len(engine.sent) == 2
    assert engine.outcomes("match")[-1] == ("c2", "suppressed", "daily_cap")


def test_priority_arbitration_sends_the_highest_and_logs_the_others() -> None:
    campaigns = [
        loan_campaign(id="low", priority=10),
        loan_campaign(id="high", priority=90),
        loan_campaign(id="mid", priority=50),
    ]
    engine = Engine(campaigns, max_offers_per_event=1)
    engine.feed(atm("e1", BASE))
    engine.advance(BASE + timedelta(minutes=1))
    assert [o.campaign_id for o in engine.sent] == ["high"]
    assert sorted(engine.outcomes("match")) == [
        ("high", "pending", "send_delay"),
        ("low", "suppressed", "lower_priority"),
        ("mid", "suppressed", "lower_priority"),
    ]


def test_a_capped_high_priority_campaign_leaves_the_slot_to_the_next() -> None:
    campaigns = [
        loan_campaign(id="high", priority=90, cooldown="1d"),
        loan_campaign(id="mid", priority=50, cooldown=0, daily_cap=3),
    ]
    engine = Engine(campaigns)
    engine.feed(atm("e1", BASE))
    engine.feed(atm("e2", BASE + timedelta(minutes=5)))
    engine.advance(BASE + timedelta(minutes=10))
    assert [(o.campaign_id, o.trigger_event_id) for o in engine.sent] == [
        ("high", "e1"),
        ("mid", "e2"),
    ]


def test_quiet_hours_hold_the_offer_until_morning() -> None:
    # 21:30 UTC is 22:30 in Warsaw; the window opens at 08:00 local (07:00 UTC).
    evening = datetime(2026, 1, 15, 21, 30, tzinfo=UTC)
    engine = Engine([loan_campaign()])
    engine.feed(atm("e1", evening))
    assert engine.outcomes() == [("loan", "pending", "quiet_hours")]
    engine.advance(datetime(2026, 1, 16, 6, 59, tzinfo=UTC))
    assert engine.sent == []
    engine.advance(datetime(2026, 1, 16, 7, 0, tzinfo=UTC))
    [offer] = engine.sent
    assert offer.send_at == "2026-01-16T07:00:00.000Z"


def test_validity_dates_in_the_banks_calendar() -> None:
    engine = Engine([loan_campaign(valid_from="2026-01-16", send_delay=0)], quiet_hours=None)
    engine.feed(atm("e1", datetime(2026, 1, 15, 22, 59, tzinfo=UTC)))  # 23:59 local, 15 Jan
    engine.feed(atm("e2", datetime(2026, 1, 15, 23, 1, tzinfo=UTC)))  # 00:01 local, 16 Jan
    assert [o.trigger_event_id for o in engine.sent] == ["e2"]


def test_stale_triggers_are_expired() -> None:
    engine = Engine([loan_campaign()], max_trigger_age_ms=3600_000)
    old = atm("e1", BASE)
    result = engine.shard.process(
        [old], engine.campaigns, engine.lookup, old.event_ms, old.event_ms + 2 * 3600_000
    )
    assert [(d.outcome, d.reason) for d in result.decisions] == [("suppressed", "expired")]


def test_control_group_is_decided_and_logged_but_not_sent() -> None:
    customers = [f"C{n}" for n in range(4000)]
    profiles = {c: Profile(c, sms_consent=True, first_name="X") for c in customers}
    engine = Engine([loan_campaign(control_share=0.2, send_delay=0)], profiles=profiles)
    engine.feed(*(atm(f"e{c}", BASE, customer=c) for c in customers))
    held = [d for d in engine.decisions if d.outcome == "held_out"]
    assert {d.reason for d in held} == {"control_group"}
    assert len(held) + len(engine.sent) == len(customers)
    assert 0.18 < len(held) / len(customers) < 0.22
    # The same customers again (another shard, a replay): the same split.
    again = Engine([loan_campaign(control_share=0.2, send_delay=0)], profiles=profiles)
    again.feed(*(atm(f"x{c}", BASE, customer=c) for c in customers))
    assert {d.customer_id for d in again.decisions if d.outcome == "held_out"} == {
        d.customer_id for d in held
    }


def test_global_holdout_applies_to_every_campaign() -> None:
    customers = [f"C{n}" for n in range(4000)]
    profiles = {c: Profile(c, sms_consent=True, first_name="X") for c in customers}
    campaigns = [loan_campaign(id="a", send_delay=0), loan_campaign(id="b", send_delay=0)]
    engine = Engine(campaigns, profiles=profiles, holdout_share=0.05, max_offers_per_event=2)
    engine.feed(*(atm(f"e{c}", BASE, customer=c) for c in customers))
    held = {d.customer_id for d in engine.decisions if d.reason == "global_holdout"}
    assert 0.04 < len(held) / len(customers) < 0.06
    by_campaign = {
        cid: {
            d.customer_id
            for d in engine.decisions
            if d.reason == "global_holdout" and d.campaign_id == cid
        }
        for cid in ("a", "b")
    }
    assert by_campaign["a"] == by_campaign["b"] == held


def test_a_rule_that_raises_is_a_decision_and_the_stream_goes_on() -> None:
    @campaign(id="broken", version=1, template="x", triggers=[ATM_DECLINE], priority=99)
    def broken(event: Event, profile: Profile, history: History) -> bool:
        return 1 / 0 > 0

    engine = Engine([broken, loan_campaign(send_delay=0)])
    engine.feed(atm("e1", BASE))
    [error] = [d for d in engine.decisions if d.outcome == "rule_error"]
    assert (error.campaign_id, error.reason) == ("broken", "rule_raised")
    assert error.detail is not None and "ZeroDivisionError" in error.detail
    assert [o.campaign_id for o in engine.sent] == ["loan"]


def test_a_rule_that_runs_too_long_is_cut_off() -> None:
    @campaign(id="slow", version=1, template="x", triggers=[ATM_DECLINE])
    def slow(event: Event, profile: Profile, history: History) -> bool:
        while True:
            pass

    engine = Engine([slow], rule_timeout_ms=50)
    engine.feed(atm("e1", BASE))
    assert engine.outcomes() == [("slow", "rule_error", "rule_timeout")]


def test_a_template_naming_a_missing_parameter_is_a_rule_error() -> None:
    engine = Engine([loan_campaign(template="{first_name}: {missing}")])
    engine.feed(atm("e1", BASE))
    [decision] = engine.decisions
    assert (decision.outcome, decision.reason) == ("rule_error", "rule_raised")
    assert decision.detail is not None and "missing" in decision.detail


def test_rules_see_the_customers_recent_behaviour() -> None:
    seen: list[tuple[int, list[str]]] = []

    @campaign(id="spy", version=1, template="x", triggers=[ATM_DECLINE], send_delay=0)
    def spy(event: Event, profile: Profile, history: History) -> bool:
        seen.append((history.count("transaction"), [e.screen or "" for e in history.session]))
        return False

    engine = Engine([spy])
    engine.feed(
        app_event("v1", BASE - timedelta(hours=2), "screen_view", screen="old"),
        app_event("v2", BASE - timedelta(minutes=10), "screen_view", screen="offers"),
        app_event("v3", BASE - timedelta(minutes=5), "screen_view", screen="loan"),
        atm("t1", BASE - timedelta(minutes=1), status="approved"),
        atm("e1", BASE),
    )
    # The approved withdrawal did not trigger (it is not declined); the session starts after
    # the 2-hour gap and holds app events only.
    assert seen == [(1, ["offers", "loan"])]


def test_pending_offers_survive_a_restart_from_the_snapshot() -> None:
    engine = Engine([loan_campaign()])
    engine.feed(atm("e1", BASE))
    restored = Engine([loan_campaign()])
    restored.shard = OffersShard(engine.shard.config, engine.shard.snapshot())
    restored.advance(BASE + timedelta(minutes=1))
    assert [o.offer_id for o in restored.sent] == [offer_id("C1", "loan", "e1")]


def test_a_quiet_input_releases_by_the_wall_clock() -> None:
    engine = Engine([loan_campaign()], release_grace_ms=2000)
    arrival = atm("e1", BASE)
    decided_at = arrival.event_ms + 100
    engine.shard.process([arrival], engine.campaigns, engine.lookup, arrival.event_ms, decided_at)
    assert engine.shard.next_wall_due_ms() == decided_at + 45_000 + 2000
    result = engine.shard.release(engine.campaigns, engine.lookup, decided_at + 47_000)
    assert [o.trigger_event_id for o in result.offers] == ["e1"]


def test_idle_customers_are_freed() -> None:
    engine = Engine([loan_campaign(cooldown="1h")], history_ms=3600_000, quiet_hours=None)
    engine.feed(atm("e1", BASE), app_event("v1", BASE, "screen_view", customer="C9"))
    engine.advance(BASE + timedelta(minutes=30))
    assert set(engine.shard.customers) == {"C1", "C9"}
    # After the history window and the cooldown, and the next bank day for the cap.
    engine.advance(BASE + timedelta(days=2))
    assert engine.shard.customers == {}


def test_a_missing_first_name_leaves_no_trace_in_the_text() -> None:
    engine = Engine(
        [loan_campaign(template="{first_name}, a loan of {limit}", send_delay=0)],
        profiles={"C1": Profile("C1", sms_consent=True)},
    )
    engine.feed(atm("e1", BASE))
    assert [o.text for o in engine.sent] == ["A loan of 5000"]


def test_decisions_always_carry_their_schema() -> None:
    engine = Engine([loan_campaign()])
    engine.feed(atm("e1", BASE))
    assert b'"schema":"bank-clickstream/offer-decision/v1"' in msgspec.json.encode(
        engine.decisions[0]
    )


def test_every_shard_of_a_process_cuts_off_slow_rules() -> None:
    @campaign(id="slow", version=1, template="x", triggers=[ATM_DECLINE])
    def slow(event: Event, profile: Profile, history: History) -> bool:
        while True:
            pass

    first, second = Engine([slow], rule_timeout_ms=30), Engine([slow], rule_timeout_ms=30)
    first.feed(atm("e1", BASE))
    second.feed(atm("e2", BASE))
    assert first.outcomes() == second.outcomes() == [("slow", "rule_error", "rule_timeout")]


def test_a_campaign_that_ends_before_the_send_time_sends_nothing() -> None:
    night = datetime(2026, 1, 15, 22, 50, tzinfo=UTC)  # 23:50 in Warsaw
    engine = Engine([loan_campaign(valid_until="2026-01-15", send_delay="20m")], quiet_hours=None)
    engine.feed(atm("e1", night))
    engine.advance(night + timedelta(hours=1))
    assert engine.sent == []
    assert engine.outcomes("release") == [("loan", "suppressed", "expired")]


def test_snapshots_reencode_only_changed_customers_and_restore_everyone() -> None:
    profiles = {c: Profile(c, sms_consent=True, first_name="X") for c in ("C1", "C2")}
    engine = Engine([loan_campaign()], profiles=profiles)
    engine.feed(atm("e1", BASE), atm("e2", BASE, customer="C2"))
    first = engine.shard.snapshot()
    engine.feed(app_event("v1", BASE + timedelta(seconds=5), "screen_view", screen="home"))
    engine.advance(BASE + timedelta(seconds=10))
    restored = OffersShard(engine.shard.config, engine.shard.snapshot())
    assert restored.customers == engine.shard.customers
    assert len(restored.customers["C1"].events) == 2
    assert OffersShard(engine.shard.config, first).customers["C1"].events[-1].event_id == "e1"
    # Both pending offers survive, the untouched customer's included.
    engine.shard = restored
    engine.advance(BASE + timedelta(minutes=1))
    assert sorted(o.customer_id for o in engine.sent) == ["C1", "C2"]


_VALUES = st.sampled_from(["a", "b", None])


@st.composite
def _triggers(draw: st.DrawFn) -> Trigger:
    props = draw(st.dictionaries(st.sampled_from(["kind", "status"]), st.sampled_from(["x", "y"])))
    return Trigger(
        draw(st.sampled_from([None, "click", "transaction", ("click", "screen_view")])),
        channel=draw(st.sampled_from([None, "atm", "mobile"])),
        screen=draw(_VALUES),
        element=draw(_VALUES),
        form=draw(_VALUES),
        properties=props,
    )


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(st.lists(st.lists(_triggers(), min_size=1, max_size=3), max_size=6), st.data())
def test_the_trigger_index_finds_exactly_the_matching_campaigns(
    triggers: list[list[Trigger]], data: st.DataObject
) -> None:
    campaigns = [
        loan_campaign(id=f"c{n}", priority=n % 3, triggers=own) for n, own in enumerate(triggers)
    ]
    index = CampaignSet(campaigns)
    for _ in range(20):
        event_type = data.draw(st.sampled_from(["click", "transaction", "screen_view"]))
        extra: dict[str, Any] = {k: data.draw(_VALUES) for k in ("screen", "element", "form")}
        props = data.draw(
            st.dictionaries(st.sampled_from(["kind", "status"]), st.sampled_from(["x", "y"]))
        )
        event = app_event("e", BASE, event_type, properties=props, **extra).event
        expected = [c for c in index.campaigns if any(t.matches(event) for t in c.triggers)]
        assert index.candidates(event) == expected
