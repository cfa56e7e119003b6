"""Every panel of every dashboard, run against a Redis filled by the real job over simulated
traffic (offers on, a campaign whose rule fails, malformed, duplicate and late events): its
query returns what the panel and its transformations need, with the variables as Grafana fills
them from the same Redis."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from flows.runner import prepare_topics
from grafana.build import DASHBOARDS
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from state.settings import Settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.frames import (
    NUMBER,
    STRING,
    TIME,
    Frame,
    dashboard_variables,
    query_frame,
    transform,
)
from tests.support.frames import variable_values as options_of
from tests.support.job import run_job, with_offers

START = datetime(2026, 1, 15, 7, 0, tzinfo=UTC)
HOURS = 3
BROKEN = '''"""A campaign whose rule fails: the rule-error panels have something to show."""

from offers import Event, History, Offer, Profile, Trigger, campaign


@campaign(id="broken-rule", version=1, template="never sent", triggers=[Trigger("login")])
def broken(event: Event, profile: Profile, history: History) -> Offer | None:
    raise RuntimeError("broken on purpose")
'''


@dataclass(frozen=True)
class Filled:
    """The job's Redis after the run, and the time range the dashboards look at."""

    client: Any
    settings: Settings
    span: tuple[int, int]


@pytest.fixture(scope="module")
def filled(module_services: Services, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    tmp_path = tmp_path_factory.mktemp("dashboards")
    settings = with_offers(module_services.settings, tmp_path / "campaigns")
    assert settings.campaigns_dir is not None
    (settings.campaigns_dir / "broken_rule.py").write_text(BROKEN)
    prepare_topics(settings, "kafka")
    config = SimulationConfig(
        customers=1500, rate=10.0, duration_s=HOURS * 3600, seed=2024, start=START,
        duplicate_rate=0.01, malformed_rate=0.01, late_rate=0.01, late_max_s=900,
    )  # fmt: skip
    load_simulated_customers(module_services.redis, settings.redis_prefix, tmp_path, config)
    with KafkaWriter(settings.kafka_bootstrap_servers, settings.events_topics[0]) as writer:
        for message in generate(config):
            writer.write(message)
    run_job(settings, "kafka", None)
    start_ms = int(START.timestamp() * 1000)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    return Filled(client, settings, (start_ms, start_ms + HOURS * 3_600_000))


def _variables(filled: Filled, model: dict[str, Any]) -> dict[str, str]:
    return dashboard_variables(filled.client, model, filled.settings.redis_prefix)


def _names(frame: Frame, kind: str) -> list[str]:
    return [f.name for f in frame if f.type == kind]


def _check(panel: dict[str, Any], frame: Frame) -> None:
    """What the panel's type needs of the frame it gets (after its transformations)."""
    title, kind = panel["title"], panel["type"]
    rows = max((len(f.values) for f in frame), default=0)
    assert rows > 0 and _names(frame, NUMBER), (title, frame)
    options = panel.get("options", {})
    reduce = options.get("reduceOptions", {})
    if reduce.get("fields"):
        pattern = re.compile(reduce["fields"].strip("/"))
        assert [n for n in _names(frame, NUMBER) if pattern.search(n)], (title, frame)
    if kind == "timeseries":
        assert _names(frame, TIME) == ["$time"], title
    elif kind in ("bargauge", "table"):
        if reduce.get("values") or kind == "table":
            # A row per item: its name and its value.
            assert len(_names(frame, STRING)) == 1 and len(_names(frame, NUMBER)) == 1, title
    elif kind == "barchart":
        assert options["xField"] in _names(frame, STRING), title
    elif kind == "netsage-sankey-panel":
        # One frame: the node columns as text, the value last.
        assert [f.type for f in frame] == [STRING, STRING, NUMBER], (title, frame)
        assert all(frame[0].values) and all(frame[1].values), title
    elif kind in ("stat", "piechart"):
        assert rows == 1 or reduce.get("calcs"), title
    else:
        raise AssertionError(f"no check for a {kind} panel")


@pytest.mark.parametrize("name", sorted(p.stem for p in DASHBOARDS.glob("*.json")))
def test_every_panel_gets_the_frame_it_draws_from_the_jobs_redis(filled: Filled, name: str) -> None:
    model = json.loads((DASHBOARDS / f"{name}.json").read_text())
    variables = _variables(filled, model)
    assert variables["day"] == "2026-01-15"
    panels = [p for p in model["panels"] if p["type"] != "row"]
    now_ms = int(time.time() * 1000)
    for panel in panels:
        for target in panel["targets"]:
            # The job's own counters are sampled by the wall clock, the figures by event time.
            wall = ":ops:" in target["keyName"]
            span = (now_ms - 86_400_000, now_ms + 60_000) if wall else filled.span
            frame = query_frame(filled.client, target, variables, span)
            _check(panel, transform(frame, panel.get("transformations", [])))


def test_the_sankey_frame_holds_the_days_most_frequent_transitions(filled: Filled) -> None:
    model = json.loads((DASHBOARDS / "journeys.json").read_text())
    (panel,) = [p for p in model["panels"] if p["type"] == "netsage-sankey-panel"]
    variables = _variables(filled, model)
    (target,) = panel["targets"]
    frame = transform(
        query_frame(filled.client, target, variables, filled.span), panel["transformations"]
    )
    key = f"{filled.settings.redis_prefix}:day:2026-01-15:transitions"
    top = filled.client.zrange(key, -50, -1, withscores=True)
    assert [f.name for f in frame] == ["from", "to", "transitions"]
    rows = set(zip(*(f.values for f in frame), strict=True))
    assert rows == {(*member.split("|", 1), score) for member, score in top}
    assert len(rows) == min(50, filled.client.zcard(key)) > 20


def test_the_variables_list_the_days_months_and_campaigns_of_the_run(filled: Filled) -> None:
    prefix = filled.settings.redis_prefix
    assert options_of(filled.client, f"ZRANGE {prefix}:days 0 -1", None) == ["2026-01-15"]
    assert options_of(filled.client, f"ZRANGE {prefix}:days 0 -1", r"/^(\d{4}-\d{2})/") == [
        "2026-01"
    ]
    campaigns = options_of(filled.client, f"HKEYS {prefix}:offers:2026-01-15:matched", None)
    assert "rejected-transfer-overdraft" in campaigns
    errors = filled.client.hgetall(f"{prefix}:offers:2026-01-15:rule_error")
    assert int(errors["broken-rule"]) > 0


def test_no_dashboard_reads_a_key_family_the_job_does_not_write() -> None:
    from state.redis_keys import FAMILIES

    patterns = [
        re.compile(
            "^"
            + re.escape(f.pattern)
            .replace("cs", r"\$\{prefix\}", 1)
            .replace(re.escape("<day>"), r"\$\{day\}")
            .replace(re.escape("<YYYY-MM>"), r"\$\{month\}")
            .replace(re.escape("<dim>"), "[a-z_]+")
            .replace(re.escape("<name>"), "[a-z_]+")
            .replace(re.escape("<counter>"), "[a-z_]+")
            .replace(re.escape("<campaign id>"), r"\$\{campaign\}")
            + "$"
        )
        for f in FAMILIES
    ]
    for path in DASHBOARDS.glob("*.json"):
        model = json.loads(path.read_text())
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                key = target["keyName"]
                assert any(p.match(key) for p in patterns), (path.name, key)


def test_every_alert_rule_query_answers_from_the_jobs_redis(filled: Filled) -> None:
    import yaml

    path = DASHBOARDS.parent / "provisioning" / "alerting" / "bank-clickstream-pipeline.yaml"
    (group,) = yaml.safe_load(path.read_text())["groups"]
    now_ms = int(time.time() * 1000)
    variables = {"CLICKSTREAM_REDIS_PREFIX": filled.settings.redis_prefix}
    for rule in group["rules"]:
        for step in rule["data"]:
            if step["datasourceUid"] == "__expr__":
                continue
            window_ms = step["relativeTimeRange"]["from"] * 1000
            frame = query_frame(
                filled.client, step["model"], variables, (now_ms - window_ms, now_ms)
            )
            assert _names(frame, NUMBER), (rule["title"], frame)
            assert all(len(f.values) >= 1 for f in frame), rule["title"]
    # The run had dead letters and rule errors minutes ago: their alerts would fire now.
    pipeline = filled.client.hgetall(f"{filled.settings.redis_prefix}:ops:recent")
    assert int(pipeline["dead_letters_last_10m"]) > 0
    assert int(pipeline["offer_rule_errors_last_10m"]) > 0


def test_the_consumer_lag_is_reported_per_partition_and_ends_at_zero(filled: Filled) -> None:
    lag = filled.client.hgetall(f"{filled.settings.redis_prefix}:ops:lag")
    topic = filled.settings.events_topics[0]
    partitions = {k for k in lag if k != "total"}
    assert partitions and all(k.startswith(f"{topic}#") for k in partitions)
    # The bounded run read every partition to its end.
    assert {int(v) for v in lag.values()} == {0}
