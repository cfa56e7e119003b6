"""The traffic simulator: deterministic, valid against the contract, realistic, noisy on request."""

from __future__ import annotations

import gzip
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sources.simulator import (
    SEGMENTS,
    MessageKind,
    SimulatedMessage,
    SimulationConfig,
    customers,
    generate,
)
from sources.simulator_cli import simulate
from sources.simulator_output import DeliveryError, JsonLinesWriter, KafkaWriter, emit
from state.contract import Event, cross_field_problem

LIMIT = 16_384
DECODER = msgspec.json.Decoder(Event)
TIMESTAMP = re.compile(rb'"event_time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"')
NOISY = SimulationConfig(
    customers=400,
    rate=400,
    duration_s=120,
    seed=7,
    duplicate_rate=0.03,
    late_rate=0.03,
    late_max_s=30,
    malformed_rate=0.03,
)


def rejection(value: bytes) -> str | None:
    """Why the job would reject ``value`` (None when it is a valid event)."""
    if len(value) > LIMIT:
        return "too large"
    try:
        event = DECODER.decode(value)
    except msgspec.ValidationError as exc:
        return str(exc)
    except msgspec.DecodeError:
        return "not JSON"
    return cross_field_problem(event)


def event_ms(event: Event) -> int:
    return int(event.event_time.timestamp() * 1000)


@pytest.fixture(scope="module")
def noisy_run() -> list[SimulatedMessage]:
    return list(generate(NOISY))


@pytest.fixture(scope="module")
def noisy_events(noisy_run: list[SimulatedMessage]) -> list[Event]:
    """The valid events of the noisy run in emission order (late ones included, no repeats)."""
    return [DECODER.decode(m.value) for m in noisy_run if m.kind in ("valid", "late")]


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() -> None:
    config = SimulationConfig(customers=50, rate=200, duration_s=20, duplicate_rate=0.05,
                              late_rate=0.05, malformed_rate=0.05)  # fmt: skip
    first = [(m.key, m.value) for m in generate(config)]
    again = [(m.key, m.value) for m in generate(config)]
    other = [(m.key, m.value) for m in generate(msgspec.structs.replace(config, seed=43))]
    assert first == again
    assert len(first) > config.event_count  # the noise is there
    assert first != other
    assert customers(config) == customers(msgspec.structs.replace(config, duration_s=99))


def test_every_valid_message_passes_the_contract_and_is_keyed_by_its_identity(
    noisy_run: list[SimulatedMessage],
) -> None:
    checked = 0
    for message in noisy_run:
        if message.kind == "malformed":
            continue
        assert rejection(message.value) is None, message.value
        assert TIMESTAMP.search(message.value), message.value
        event = DECODER.decode(message.value)
        assert message.key == event.identity_key.encode()
        checked += 1
    assert checked > NOISY.event_count


def test_every_malformed_message_is_rejected_by_the_contract_in_varied_ways(
    noisy_run: list[SimulatedMessage],
) -> None:
    reasons = [rejection(m.value) for m in noisy_run if m.kind == "malformed"]
    assert None not in reasons
    seen = "\n".join(str(reason) for reason in reasons)
    for symptom in (
        "not JSON",
        "got `array`",
        "missing required field `event_id`",
        "at `$.event_type`",
        "customer_id and device_id are both missing",
        "at `$.event_time`",
        "too large",
        "at `$.properties",
        "got `int`",
    ):
        assert symptom in seen, symptom


def test_valid_events_are_exactly_rate_times_duration_with_unique_ids_from_the_start(
    noisy_events: list[Event],
) -> None:
    assert len(noisy_events) == NOISY.event_count == 48_000
    assert len({event.event_id for event in noisy_events}) == len(noisy_events)
    times = sorted(event.event_time for event in noisy_events)
    assert times[0] == NOISY.start
    assert times[-1] < NOISY.start + timedelta(seconds=NOISY.duration_s)


def test_noise_lands_near_the_configured_rates(noisy_run: list[SimulatedMessage]) -> None:
    kinds = Counter(message.kind for message in noisy_run)
    events = kinds["valid"] + kinds["late"]
    expected: list[tuple[MessageKind, float]] = [
        ("duplicate", NOISY.duplicate_rate),
        ("late", NOISY.late_rate),
        ("malformed", NOISY.malformed_rate),
    ]
    for kind, rate in expected:
        assert kinds[kind] / events == pytest.approx(rate, rel=0.15), kind


def test_a_duplicate_repeats_an_earlier_message_byte_for_byte_a_little_later(
    noisy_run: list[SimulatedMessage],
) -> None:
    first_seen: dict[bytes, tuple[int, bytes | None]] = {}
    distances = []
    for position, message in enumerate(noisy_run):
        if message.kind == "duplicate":
            original_position, original_key = first_seen[message.value]
            assert message.key == original_key
            distances.append(position - original_position)
        elif message.kind != "malformed":
            first_seen.setdefault(message.value, (position, message.key))
    distances.sort()
    # A few to a few hundred messages later (the last ones come sooner: the run is over).
    assert distances[-1] <= 310
    assert 100 <= distances[len(distances) // 2] <= 200


def test_events_come_in_time_order_except_late_ones_within_late_max(
    noisy_run: list[SimulatedMessage],
) -> None:
    newest = -1
    lags = []
    for message in noisy_run:
        if message.kind not in ("valid", "late"):
            continue
        moment = event_ms(DECODER.decode(message.value))
        if message.kind == "valid":
            assert moment >= newest
        else:
            lags.append(newest - moment)
        newest = max(newest, moment)
    assert max(lags) <= NOISY.late_max_s * 1000
    assert sum(lag > 1000 for lag in lags) > len(lags) / 2  # late enough to be noticed


def test_noise_leaves_the_valid_events_as_they_were(noisy_events: list[Event]) -> None:
    quiet = msgspec.structs.replace(NOISY, duplicate_rate=0.0, late_rate=0.0, malformed_rate=0.0)
    quiet_events = [DECODER.decode(m.value) for m in generate(quiet)]
    assert sorted(quiet_events, key=lambda e: e.event_id) == sorted(
        noisy_events, key=lambda e: e.event_id
    )


def test_anonymous_starts_on_a_device_link_to_the_customer_at_login(
    noisy_events: list[Event],
) -> None:
    anonymous_devices: set[str] = set()
    linked: dict[str, str] = {}
    for event in noisy_events:
        if event.channel not in ("mobile", "web"):
            continue
        assert event.device_id is not None
        if event.customer_id is None:
            anonymous_devices.add(event.device_id)
        elif event.event_type == "login" and event.device_id in anonymous_devices:
            linked[event.device_id] = event.customer_id
    assert len(linked) > 50
    never_logged_in = anonymous_devices - linked.keys()
    assert len(never_logged_in) > 10
    # After a login the device's events carry the customer id.
    after_login = [e for e in noisy_events if e.device_id in linked and e.customer_id]
    assert {e.customer_id for e in after_login} <= set(linked.values())


def test_business_events_include_atm_withdrawals_declined_for_insufficient_funds(
    noisy_events: list[Event],
) -> None:
    declined = [
        event
        for event in noisy_events
        if event.event_type == "transaction"
        and event.channel == "atm"
        and event.properties.get("kind") == "atm_withdrawal"
        and event.properties.get("status") == "declined"
    ]
    assert declined
    for event in declined:
        assert event.customer_id is not None
        assert event.properties["reason"] == "insufficient_funds"
        assert event.properties["currency"] == "PLN"
        assert isinstance(event.properties["amount"], int)
    kinds = Counter(
        (e.channel, e.properties.get("kind")) for e in noisy_events if e.event_type == "transaction"
    )
    assert kinds[("core", "card_payment")] and kinds[("core", "transfer")]
    abroad_failures = [
        e
        for e in noisy_events
        if e.properties.get("kind") == "card_payment"
        and e.properties.get("status") == "declined"
        and e.properties.get("country") != "PL"
    ]
    assert abroad_failures


def test_journeys_have_forms_abandoned_and_submitted_conversions_errors_and_rage_clicks(
    noisy_events: list[Event],
) -> None:
    started = Counter(e.form for e in noisy_events if e.event_type == "form_start")
    submitted = Counter(e.form for e in noisy_events if e.event_type == "form_submit")
    for form in ("transfer_form", "loan_application_form", "card_limit_form"):
        assert 0 < submitted[form] < started[form], form
    assert {e.properties.get("product") for e in noisy_events if e.event_type == "conversion"} >= {
        "personal_loan",
        "credit_card",
    }
    assert any(e.event_type == "error" and "error_code" in e.properties for e in noisy_events)
    assert any(e.event_type == "logout" for e in noisy_events)
    # Rage click (PRODUCT.md): more than 3 clicks on the same screen and element within 1 s.
    clicks: dict[tuple[str | None, str | None, str | None], list[int]] = defaultdict(list)
    for event in noisy_events:
        if event.event_type == "click":
            clicks[(event.device_id, event.screen, event.element)].append(event_ms(event))
    rage = [
        place
        for place, moments in clicks.items()
        if any(moments[i + 3] - moments[i] <= 1000 for i in range(len(moments) - 3))
    ]
    assert rage


def test_app_events_carry_realistic_devices_and_the_simulated_customers() -> None:
    config = SimulationConfig(customers=300, rate=300, duration_s=30)
    people = customers(config)
    assert [c.customer_id for c in people[:2]] == ["C0000001", "C0000002"]
    assert {c.segment for c in people} == set(SEGMENTS)
    assert {len(c.devices) for c in people} == {1, 2}
    devices = {d.device_id: d for c in people for d in c.devices}
    events = [DECODER.decode(m.value) for m in generate(config)]
    assert {e.customer_id for e in events if e.customer_id} <= {c.customer_id for c in people}
    for event in events:
        if event.channel in ("mobile", "web"):
            assert event.device_id is not None
            if event.customer_id is not None:
                device = devices[event.device_id]
                assert (event.app, event.app_version, event.os, event.os_version) == (
                    device.app,
                    device.app_version,
                    device.os,
                    device.os_version,
                )
            expected_os = {"mobile": {"iOS", "Android"}, "web": {"Windows", "macOS", "Linux"}}
            assert event.os in expected_os[event.channel]
    versions = Counter(e.app_version for e in events if e.app == "mobile-banking")
    assert versions.most_common(1)[0][0] == "5.14.0"  # the newest version is the most common


def test_with_customers_to_spare_journeys_keep_their_pace_and_sessions_split() -> None:
    config = SimulationConfig(customers=5000, rate=5, duration_s=4 * 3600)
    last_seen: dict[str, int] = {}
    gaps = []
    for message in generate(config):
        event = DECODER.decode(message.value)
        if event.channel not in ("mobile", "web") or event.customer_id is None:
            continue
        moment = event_ms(event)
        if event.customer_id in last_seen:
            gaps.append(moment - last_seen[event.customer_id])
        last_seen[event.customer_id] = moment
    gaps.sort()
    assert 1_000 <= gaps[len(gaps) // 2] <= 30_000  # seconds between the steps of a journey
    assert sum(gap > 30 * 60_000 for gap in gaps) > 200  # and journeys hours apart


CONFIGURATIONS = st.builds(
    SimulationConfig,
    customers=st.integers(1, 40),
    rate=st.floats(0.5, 300),
    duration_s=st.floats(0, 20),
    seed=st.integers(0, 2**32),
    start=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    duplicate_rate=st.floats(0, 0.3),
    late_rate=st.floats(0, 0.3),
    late_max_s=st.floats(0.001, 60),
    malformed_rate=st.floats(0, 0.3),
)


@settings(max_examples=40, deadline=None)
@given(config=CONFIGURATIONS)
def test_any_configuration_keeps_the_contract_and_the_lateness_bound(
    config: SimulationConfig,
) -> None:
    newest = -1
    events = 0
    for message in generate(config):
        problem = rejection(message.value)
        if message.kind == "malformed":
            assert problem is not None
            continue
        assert problem is None
        if message.kind == "duplicate":
            continue
        events += 1
        moment = event_ms(DECODER.decode(message.value))
        if message.kind == "valid":
            assert moment >= newest
        else:
            assert newest - moment <= config.late_max_s * 1000
        newest = max(newest, moment)
    assert events == config.event_count


def test_a_configuration_that_cannot_be_simulated_is_refused_with_every_reason() -> None:
    with pytest.raises(ValueError, match="customers must be at least 1") as refused:
        SimulationConfig(customers=0, rate=-1, duplicate_rate=2, start=datetime(2026, 1, 1))
    message = str(refused.value)
    assert "rate must be above 0" in message
    assert "duplicate_rate must be between 0 and 1" in message
    assert "start must carry a UTC offset" in message


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz"])
def test_a_file_holds_one_message_per_line_and_the_same_run_writes_the_same_bytes(
    tmp_path: Path, name: str
) -> None:
    config = SimulationConfig(customers=20, rate=100, duration_s=10, malformed_rate=0.05)
    written = []
    for attempt in ("first", "second"):
        path = tmp_path / attempt / name
        with JsonLinesWriter(path) as writer:
            summary = emit(generate(config), writer, expected_events=1000, progress=False)
        written.append(path.read_bytes())
    assert written[0] == written[1]
    text = gzip.decompress(written[0]) if name.endswith(".gz") else written[0]
    lines = text.splitlines()
    assert lines == [m.value for m in generate(config)]
    assert (summary.events, summary.messages) == (1000, len(lines))
    assert summary.malformed == len(lines) - 1000 > 0


def test_the_simulate_command_writes_a_file_and_reports_what_it_wrote(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(simulate)
    path = tmp_path / "day.jsonl"
    result = CliRunner().invoke(
        app,
        ["--to", f"file:{path}", "--customers", "30", "--rate", "50", "--duration", "20",
         "--start", "2026-03-01T10:00:00+01:00", "--duplicate-rate", "0.1", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = path.read_bytes().splitlines()
    duplicates = len(lines) - 1000
    assert duplicates > 0
    assert "Simulated 1,000 events" in result.output
    assert f"{duplicates:,} duplicates" in result.output
    assert str(path) in result.output.replace("\n", "")
    first = DECODER.decode(lines[0])
    assert first.event_time == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    refused = CliRunner().invoke(app, ["--to", "s3://bucket/key", "--no-progress"])
    assert refused.exit_code == 2
    assert "file:PATH" in refused.output


def test_kafka_delivery_failures_are_counted_and_raised_at_the_end() -> None:
    messages = list(generate(SimulationConfig(customers=5, rate=10, duration_s=1)))
    writer = KafkaWriter("127.0.0.1:1", "bank.events", delivery_timeout_s=1)
    for message in messages:
        writer.write(message)
    with pytest.raises(DeliveryError, match=r"10 of 10 messages were not delivered"):
        writer.close()
