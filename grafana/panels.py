"""Panels fed by the Redis data source, one helper per way a key family is shown.

Each helper pairs a command with the transformations that turn its frame into what the panel
draws (see :mod:`grafana.redis_query` for the frames):

- a hash (HGETALL) is one row with a column per field: a pie or a bar gauge takes it as it is;
  a table or sorted bars need it as rows (Reduce, "Series to rows");
- a sorted set (ZRANGE … WITHSCORES) likewise, ascending: rankings turn it to rows and sort;
- a stream (XRANGE) is a row per entry with ``$time``: a time series takes it as it is;
- the Sankey panel wants one frame of string columns and a last numeric column: the
  ``from|to`` members are split with a named-group regular expression.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    dashboard,
    piechart,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig

from grafana.redis_query import DATASOURCE, Query, hget, hgetall, xrange, zrange
from state import redis_keys

PREFIX = "${prefix}"
DAY = "${day}"
MONTH = "${month}"
LAST = "Last *"
"""The column the Reduce transformation names the value of each row (the reducer 'Last *')."""
TRANSITION = r"/^(?<from>[^|]+)\|(?<to>.+)$/"
BUTTON = r"/^(?<screen>[^|]*)\|(?<element>.+)$/"


def day(family: str) -> str:
    """A journeys day key of the day picked on the dashboard."""
    return redis_keys.day_key(PREFIX, DAY, family)


def offers(family: str) -> str:
    """An offers day key of the day picked on the dashboard."""
    return redis_keys.offers_key(PREFIX, DAY, family)


def _reduce(values: bool, calcs: list[str], fields: str) -> ReduceDataOptions:
    """Which values a single-value panel shows: each row (``values``) or ``calcs`` of each field."""
    options = ReduceDataOptions().values(values).calcs(calcs)
    return options.fields(fields) if fields else options


def _transformed(panel: Any, steps: list[DataTransformerConfig]) -> Any:
    """The panel with these transformations, in order."""
    for step in steps:
        panel = panel.with_transformation(step)
    return panel


def _transform(id_val: str, options: dict[str, Any]) -> DataTransformerConfig:
    return DataTransformerConfig(id_val=id_val, options=options)


def as_rows(label: str, value: str) -> list[DataTransformerConfig]:
    """One row per column of a one-row frame: ``label`` (the field) and ``value``."""
    return [
        _transform(
            "reduce",
            {"mode": "seriesToRows", "reducers": ["lastNotNull"], "includeTimeField": False},
        ),
        _transform("organize", {"renameByName": {"Field": label, LAST: value}}),
    ]


def sorted_rows(
    label: str, value: str, *, by: str | None = None, desc: bool = True
) -> list[DataTransformerConfig]:
    """:func:`as_rows`, sorted by ``by`` (the value by default)."""
    return [
        *as_rows(label, value),
        _transform("sortBy", {"sort": [{"field": by or value, "desc": desc}]}),
    ]


def split(source: str, pattern: str) -> DataTransformerConfig:
    """Split a text column into named columns with a named-group regular expression."""
    return _transform(
        "extractFields",
        {"source": source, "format": "regexp", "regExp": pattern, "replace": False},
    )


def _panel(
    builder: Any, title: str, description: str, query: Query, width: int, height: int
) -> Any:
    return (
        builder.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(query)
        .span(width)
        .height(height)
    )


def pie(title: str, description: str, key: str, *, width: int = 8, unit: str = "short") -> Any:
    """A hash's fields as slices."""
    return (
        _panel(piechart.Panel(), title, description, hgetall(key), width, 8)
        .unit(unit)
        .reduce_options(_reduce(False, ["lastNotNull"], ""))
    )


def ranking(
    title: str,
    description: str,
    key: str,
    label: str,
    value: str,
    *,
    top: int = 10,
    width: int = 8,
    unit: str = "short",
) -> Any:
    """The ``top`` members of a sorted set as horizontal bars, largest first."""
    panel = _panel(bargauge.Panel(), title, description, zrange(key, str(-top), "-1"), width, 9)
    panel = _transformed(panel, sorted_rows(label, value))
    return panel.unit(unit).reduce_options(_reduce(True, [], f"/^{value}$/"))


def hash_bars(
    title: str,
    description: str,
    key: str,
    label: str,
    value: str,
    *,
    width: int = 8,
    unit: str = "short",
    by_label: bool = False,
    max_value: float | None = None,
    fields: str | None = None,
) -> Any:
    """A hash's fields (those matching the regular expression ``fields``) as horizontal bars,
    largest first (or in field order: ``by_label``).
    """
    panel = _panel(bargauge.Panel(), title, description, hgetall(key), width, 9)
    steps = sorted_rows(label, value, by=label if by_label else None, desc=not by_label)
    if fields is not None:
        steps.insert(0, _transform("filterFieldsByName", {"include": {"pattern": fields}}))
    panel = _transformed(panel, steps)
    panel = panel.unit(unit).reduce_options(_reduce(True, [], f"/^{value}$/"))
    return panel if max_value is None else panel.min(0).max(max_value)


def hash_table(
    title: str,
    description: str,
    key: str,
    label: str,
    value: str,
    *,
    width: int = 8,
    unit: str = "short",
) -> Any:
    """A hash as a two-column table, largest first."""
    panel = _panel(table.Panel(), title, description, hgetall(key), width, 9)
    panel = _transformed(panel, sorted_rows(label, value))
    return panel.unit(unit)


def month_bars(title: str, description: str, figure: str, value: str, *, width: int = 12) -> Any:
    """A month's figure by day of month, as vertical bars."""
    key = redis_keys.month_key(PREFIX, MONTH, figure)
    panel = _panel(barchart.Panel(), title, description, hgetall(key), width, 8)
    panel = _transformed(panel, sorted_rows("day", value, by="day", desc=False))
    return panel.x_field("day").unit("short")


def per_minute(
    title: str, description: str, key: str, fields: list[str] | None = None, *, width: int = 12
) -> Any:
    """A per-minute stream as lines over the dashboard's time range."""
    panel = _panel(timeseries.Panel(), title, description, xrange(key), width, 8).unit("short")
    if fields:
        names = ["$time", *fields]
        panel = panel.with_transformation(
            _transform("filterFieldsByName", {"include": {"names": names}})
        )
    return panel


def counters(title: str, description: str, keys: list[str], *, width: int = 12) -> Any:
    """Several streams (one field each) as lines over the dashboard's time range."""
    panel = timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
    for index, key in enumerate(keys):
        panel = panel.with_target(xrange(key, ref_id=chr(ord("A") + index)))
    return panel.span(width).height(8).unit("short")


def stat_field(
    title: str,
    description: str,
    key: str,
    field: str,
    *,
    width: int = 4,
    unit: str = "short",
    warn_above: float | None = None,
) -> Any:
    """One field of a hash as a big number (orange above ``warn_above``)."""
    panel = _panel(stat.Panel(), title, description, hget(key, field), width, 4).unit(unit)
    panel = panel.reduce_options(_reduce(False, ["lastNotNull"], ""))
    if warn_above is not None:
        panel = panel.thresholds(_thresholds(warn_above))
    return panel


def stat_sum(
    title: str, description: str, key: str, field: str, *, width: int = 4, calc: str = "sum"
) -> Any:
    """One field of a per-minute stream, summed (or another reducer) over the time range."""
    panel = _panel(stat.Panel(), title, description, xrange(key), width, 4).unit("short")
    return panel.reduce_options(_reduce(False, [calc], f"/^{field}$/"))


def sankey(title: str, description: str, key: str, value: str, *, top: int = 50) -> Any:
    """The ``top`` ``from|to`` members of a sorted set as a Sankey diagram (netsage plugin)."""
    steps = [
        *as_rows("pair", value),
        split("pair", TRANSITION),
        _transform(
            "organize",
            {"excludeByName": {"pair": True}, "indexByName": {"from": 0, "to": 1, value: 2}},
        ),
    ]
    panel = (
        dashboard.Panel()
        .type("netsage-sankey-panel")
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(zrange(key, str(-top), "-1"))
        .span(24)
        .height(12)
        .options({"monochrome": False, "color": "Spectral", "nodeWidth": 24, "nodePadding": 18})
    )
    panel = _transformed(panel, steps)
    return panel


def _thresholds(warn_above: float) -> dashboard.ThresholdsConfig:
    from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode

    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color="green"), Threshold(value=warn_above, color="orange")])
    )
