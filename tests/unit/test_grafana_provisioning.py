"""grafana/provisioning/ is what a stock Grafana with the Redis data source plugin loads as it
is: valid YAML whose data source uid is the one every panel and alert names, a dashboards
provider, and alert rules that read fields the job writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from grafana.redis_query import DATASOURCE_UID, PLUGIN
from operators.aggregates import WINDOWS

PROVISIONING = Path(__file__).resolve().parents[2] / "grafana" / "provisioning"


def _load(folder: str) -> dict[str, Any]:
    (path,) = (PROVISIONING / folder).glob("*.yaml")
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    assert loaded["apiVersion"] == 1
    return loaded


def test_the_data_source_has_the_uid_the_dashboards_use() -> None:
    (source,) = _load("datasources")["datasources"]
    assert (source["uid"], source["type"]) == (DATASOURCE_UID, PLUGIN)
    assert source["url"] == "${CLICKSTREAM_GRAFANA_REDIS_URL}"


def test_the_dashboards_provider_loads_the_built_files_into_one_folder() -> None:
    (provider,) = _load("dashboards")["providers"]
    assert provider["type"] == "file" and provider["folder"] == "Bank clickstream"
    assert provider["options"]["path"].endswith("/bank-clickstream")


def test_every_alert_rule_reads_a_pipeline_field_the_job_writes() -> None:
    (group,) = _load("alerting")["groups"]
    rules = group["rules"]
    written = {f"{name}_last_{seconds // 60}m" for name, seconds in WINDOWS.items()}
    assert {r["title"] for r in rules} >= {
        "Dead letters rising", "No events for 5 minutes", "Late events", "Campaign rule errors",
    }  # fmt: skip
    read = set()
    for rule in rules:
        steps = {step["refId"]: step for step in rule["data"]}
        assert rule["condition"] in steps
        for step in steps.values():
            assert step["datasourceUid"] in (DATASOURCE_UID, "__expr__"), rule["uid"]
            model = step["model"]
            if step["datasourceUid"] == "__expr__":
                assert model["expression"] in steps, rule["uid"]
            elif model["command"] == "hget":
                assert model["keyName"] == "${CLICKSTREAM_REDIS_PREFIX}:ops:recent"
                read.add(model["field"])
    assert read == written
