"""Pictures of the dashboards for docs/dashboards.md from real data: ``make dashboard-pictures``.

No Grafana server runs on the development machines, so this draws each dashboard's panels with
matplotlib from the frames Grafana would get: a simulated day (24 hours on the daily curve,
offers on) goes through the real job on the local stack into a Redis prefix of its own, then
every panel's query and transformations are run as in tests/integration/test_dashboards.py and
drawn at the panel's place on the dashboard's grid. Colours and fonts are not Grafana's; what
each panel shows is.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import redis
from matplotlib.axes import Axes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.runner import prepare_topics  # noqa: E402
from grafana.build import DASHBOARDS  # noqa: E402
from sources.simulator import SimulationConfig, generate  # noqa: E402
from sources.simulator_output import KafkaWriter  # noqa: E402
from state.settings import load_settings  # noqa: E402
from tests.support.customers import load_simulated_customers  # noqa: E402
from tests.support.frames import (  # noqa: E402
    NUMBER,
    STRING,
    TIME,
    Frame,
    dashboard_variables,
    query_frame,
    transform,
)
from tests.support.job import run_job, with_offers  # noqa: E402

OUT = ROOT / "docs" / "dashboards"
START = datetime(2026, 3, 2, tzinfo=UTC)
UNIT_H = 0.42  # inches per grid row
WIDTH = 18.0  # inches for the 24 grid columns


def main() -> None:
    """Fill a fresh prefix with a simulated day, then draw every dashboard."""
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as folder:
        base = load_settings(
            redis_prefix=f"pictures-{run_id}",
            s3_prefix=f"pictures-{run_id}",
            events_topics=(f"pictures-{run_id}.events",),
        )
        settings = with_offers(base, Path(folder) / "campaigns", epoch_interval_s=2.0)
        prepare_topics(settings, "kafka")
        config = SimulationConfig(
            customers=3000, rate=3.0, duration_s=86_400, seed=11, start=START, daily_curve=True,
            duplicate_rate=0.01, malformed_rate=0.005, late_rate=0.002, late_max_s=600,
        )  # fmt: skip
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        load_simulated_customers(client, settings.redis_prefix, Path(folder), config)
        with KafkaWriter(settings.kafka_bootstrap_servers, settings.events_topics[0]) as writer:
            for message in generate(config):
                writer.write(message)
        print(f"running the job over {config.event_count:,} simulated events")
        run_job(settings, "kafka", None, timeout=900)
    start_ms = int(START.timestamp() * 1000)
    now_ms = int(time.time() * 1000)
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        for path in sorted(DASHBOARDS.glob("*.json")):
            model = json.loads(path.read_text())
            variables = dashboard_variables(client, model, settings.redis_prefix)
            spans = {
                "event": (start_ms, start_ms + 86_400_000),
                "wall": (now_ms - 3_600_000, now_ms),
            }
            draw(model, client, variables, spans, OUT / f"{path.stem}.png")
            print(f"drew {OUT / path.stem}.png")
    finally:
        for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000):
            client.delete(key)


def draw(
    model: dict[str, Any],
    client: Any,
    variables: dict[str, str],
    spans: dict[str, tuple[int, int]],
    out: Path,
) -> None:
    """One dashboard as one picture, its panels where the grid puts them."""
    panels = model["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    height = rows * UNIT_H + 0.6
    figure = plt.figure(figsize=(WIDTH, height), dpi=80)
    figure.suptitle(f"{model['title']}  ·  day {variables.get('day', '')}", x=0.01, ha="left")
    top = 1 - 0.6 / height
    for panel in panels:
        grid = panel["gridPos"]
        left, width = grid["x"] / 24, grid["w"] / 24
        bottom = top - (grid["y"] + grid["h"]) * UNIT_H / height
        inset = 0.03 if panel["type"] in ("timeseries", "barchart") else 0.008
        box = (
            left + inset,
            bottom + 0.35 / height,
            width - inset - 0.008,
            grid["h"] * UNIT_H / height - 0.6 / height,
        )
        if panel["type"] == "row":
            figure.text(left + 0.005, top - (grid["y"] + 0.8) * UNIT_H / height, panel["title"],
                        fontsize=12, weight="bold")  # fmt: skip
            continue
        axes = figure.add_axes(box)
        title = panel["title"]
        for name, value in variables.items():
            title = title.replace(f"${{{name}}}", value)
        axes.set_title(title, fontsize=10, loc="left")
        frames = []
        for target in panel["targets"]:
            span = spans["wall" if ":ops:" in target["keyName"] else "event"]
            frame = query_frame(client, target, variables, span)
            frames.append(transform(frame, panel.get("transformations", [])))
        if not any(f.values for frame in frames for f in frame):
            axes.axis("off")
            axes.text(0.5, 0.5, "No data", ha="center", va="center", color="grey")
            continue
        _PAINTERS.get(panel["type"], _nothing)(axes, panel, frames)
    figure.savefig(out)
    plt.close(figure)


def _column(frame: Frame, kind: str) -> list[Any]:
    return next((f.values for f in frame if f.type == kind), [])


def _timeseries(axes: Axes, panel: dict[str, Any], frames: list[Frame]) -> None:
    for frame in frames:
        times: Any = [datetime.fromtimestamp(t / 1000, UTC) for t in _column(frame, TIME)]
        for field in (f for f in frame if f.type == NUMBER):
            marker = "o" if len(times) < 20 else None
            axes.plot(times, field.values, label=field.name, linewidth=1, marker=marker)
    axes.legend(fontsize=6, ncol=4, loc="upper left")
    axes.tick_params(labelsize=7)
    stamps = [t for frame in frames for t in _column(frame, TIME)]
    if stamps and max(stamps) - min(stamps) < 600_000:
        # A few samples of the wall clock (a short run): show the minutes around them.
        pad = timedelta(minutes=5)
        first, last = (datetime.fromtimestamp(t / 1000, UTC) for t in (min(stamps), max(stamps)))
        axes.set_xlim(first - pad, last + pad)  # type: ignore[arg-type]


def _bars(axes: Axes, panel: dict[str, Any], frames: list[Frame]) -> None:
    frame = frames[0]
    labels, values = [str(v) for v in _column(frame, STRING)][:10], _column(frame, NUMBER)[:10]
    places = range(len(values))[::-1]
    axes.barh(list(places), values, color="#5794f2")
    for place, label in zip(places, labels, strict=True):
        axes.text(0, place, f" {label}", va="center", ha="left", fontsize=7)
    axes.set_yticks([])
    axes.tick_params(labelsize=7)


def _table(axes: Axes, panel: dict[str, Any], frames: list[Frame]) -> None:
    frame = frames[0]
    axes.axis("off")
    rows = list(zip(*(f.values for f in frame), strict=True))[:8]
    cells = [[_text(v) for v in row] for row in rows]
    if cells:
        table = axes.table(cells, colLabels=[f.name for f in frame], loc="upper center")
        table.set_fontsize(7)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:.3f}"
    return str(value)


def _pie(axes: Axes, panel: dict[str, Any], frames: list[Frame]) -> None:
    numbers = sorted(((f.values[0], f.name) for f in frames[0] if f.type == NUMBER), reverse=True)
    shown = numbers[:7] + ([(sum(v for v, _ in numbers[7:]), "other")] if len(numbers) > 7 else [])
    axes.pie([v for v, _ in shown], labels=[n for _, n in shown], textprops={"fontsize": 7})


def _stat(axes: Axes, panel: dict[str, Any], frames: list[Frame]) -> None:
    axes.axis("off")
    reduce = panel["options"]["reduceOptions"]
    values = [f.values for f in frames[0] if f.type == NUMBER and (
        not reduce.get("fields") or f.name == reduce["fields"].strip("/^$"))]  # fmt: skip
    if not values:
        return
    value = sum(values[0]) if reduce["calcs"] == ["sum"] else values[0][-1]
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    text = f"{value:,.0f}"
    if unit == "dateTimeFromNow":
        text = datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    axes.text(0.5, 0.4, text, ha="center", va="center", fontsize=20, weight="bold")


def _barchart(axes: Axes, panel: dict[str, Any], frames: list[Frame]) -> None:
    frame = frames[0]
    axes.bar([str(v) for v in _column(frame, STRING)], _column(frame, NUMBER), color="#73bf69")
    axes.tick_params(labelsize=7)


def _sankey(axes: Axes, panel: dict[str, Any], frames: list[Frame]) -> None:
    sources, targets, values = (f.values for f in frames[0])
    axes.axis("off")
    left = sorted(
        set(sources), key=lambda s: -sum(v for a, v in zip(sources, values, strict=True) if a == s)
    )
    right = sorted(
        set(targets), key=lambda t: -sum(v for b, v in zip(targets, values, strict=True) if b == t)
    )
    y_left = {name: 1 - (i + 0.5) / len(left) for i, name in enumerate(left)}
    y_right = {name: 1 - (i + 0.5) / len(right) for i, name in enumerate(right)}
    most = max(values)
    for a, b, v in zip(sources, targets, values, strict=True):
        axes.plot([0.25, 0.75], [y_left[a], y_right[b]], linewidth=0.5 + 8 * v / most, alpha=0.35,
                  color="#b877d9", solid_capstyle="butt")  # fmt: skip
    for name, y in y_left.items():
        axes.text(0.24, y, name, ha="right", va="center", fontsize=7)
    for name, y in y_right.items():
        axes.text(0.76, y, name, ha="left", va="center", fontsize=7)


def _nothing(axes: Axes, panel: dict[str, Any], frames: list[Frame]) -> None:
    axes.axis("off")


_PAINTERS = {
    "timeseries": _timeseries,
    "bargauge": _bars,
    "table": _table,
    "piechart": _pie,
    "stat": _stat,
    "barchart": _barchart,
    "netsage-sankey-panel": _sankey,
}


if __name__ == "__main__":
    main()
