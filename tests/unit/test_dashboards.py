"""The dashboards as code: the JSON in grafana/dashboards/ is what the code builds, parses back
into the SDK's model unchanged, and every panel reads the Redis data source the provisioning
declares, with a description for the analyst and a refresh of 5 to 10 seconds."""

from __future__ import annotations

import json

from grafana.build import DASHBOARDS, build, dashboard_json, parse, stale
from grafana.redis_query import DATASOURCE_UID, PLUGIN, RedisQuery
from state.funnels import DEFAULT_FUNNELS, Funnel, FunnelStep
from state.settings import load_settings


def test_the_committed_dashboards_are_what_the_code_builds_and_building_is_stable() -> None:
    files = build(load_settings().funnel_definitions())
    assert sorted(files) == [
        "cross-sections.json", "journeys.json", "offers.json", "overview.json", "pipeline.json",
    ]  # fmt: skip
    assert build(load_settings().funnel_definitions()) == files
    assert stale(files) == [], "run `clickstream grafana build` and commit grafana/dashboards/"
    assert {p.name for p in DASHBOARDS.glob("*.json")} == set(files)


def test_every_dashboard_parses_back_into_the_sdk_model_unchanged() -> None:
    for name, text in build(DEFAULT_FUNNELS).items():
        board = parse(text)
        assert json.dumps(dashboard_json(board), indent=2, sort_keys=True) + "\n" == text, name
        queries = [t for panel in board.panels or [] for t in getattr(panel, "targets", None) or []]
        assert queries and all(isinstance(q, RedisQuery) for q in queries), name


def test_every_panel_reads_the_provisioned_redis_source_and_says_what_it_answers() -> None:
    for name, text in build(DEFAULT_FUNNELS).items():
        model = json.loads(text)
        assert model["refresh"] in ("5s", "10s"), name
        panels = [p for p in model["panels"] if p["type"] != "row"]
        assert len(panels) >= 5, name
        for panel in panels:
            assert panel["datasource"] == {"type": PLUGIN, "uid": DATASOURCE_UID}, panel
            assert len(panel["description"]) > 20, panel["title"]
            assert panel["targets"], panel["title"]
        assert len({p["id"] for p in model["panels"]}) == len(model["panels"]), name


def test_a_configured_funnel_gets_its_own_panel() -> None:
    extra = Funnel(
        "card_activation",
        (FunnelStep("screen", "cards"), FunnelStep("event", "conversion")),
        600_000,
    )
    journeys = json.loads(build((*DEFAULT_FUNNELS, extra))["journeys.json"])
    keys = {t["keyName"] for p in journeys["panels"] for t in p.get("targets", [])}
    assert "${prefix}:day:${day}:funnel:card_activation" in keys
