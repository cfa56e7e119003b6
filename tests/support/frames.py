"""What a Grafana panel over the Redis data source gets: the plugin's frame for a query, run on
a real Redis, and Grafana's transformations applied to it.

The frames follow the plugin's Go code (redis-datasource 2.2.0, ``pkg/redis-hash.go``,
``redis-zset.go``, ``redis-stream.go``, ``redis-custom.go``): a value that parses as a number is
a float64 column, anything else a string column. The transformations follow Grafana 11's
(``reduce`` in series-to-rows mode with ``lastNotNull``, ``organize``, ``sortBy``,
``extractFields`` with a regular expression, ``filterFieldsByName``); only what the dashboards
use is implemented, and anything else fails loudly.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NUMBER, STRING, TIME = "number", "string", "time"


@dataclass
class Field:
    """One column of a frame."""

    name: str
    type: str
    values: list[Any] = field(default_factory=list)


Frame = list[Field]


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Grafana's ``${name}`` and ``$name`` interpolation."""
    for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in text.replace("$time", "").replace("$streamId", ""), text
    return text


def _typed(name: str, text: str) -> Field:
    try:
        return Field(name, NUMBER, [float(text)])
    except ValueError:
        return Field(name, STRING, [text])


def query_frame(
    client: Any, target: dict[str, Any], variables: dict[str, str], span: tuple[int, int]
) -> Frame:
    """The frame the plugin returns for one panel target; ``span`` is the time range in ms.

    ``client`` is a :class:`redis.Redis` that decodes responses.
    """
    key = interpolate(target["keyName"], variables)
    command = target["command"]
    if command == "hgetall":
        return [_typed(str(f), str(v)) for f, v in client.hgetall(key).items()]
    if command == "hget":
        name = interpolate(target["field"], variables)
        value = client.hget(key, name)
        return [] if value is None else [_typed(name, str(value))]
    if command == "zrange":
        pairs = client.zrange(key, int(target["min"]), int(target["max"]), withscores=True)
        return [Field(str(member), NUMBER, [float(score)]) for member, score in pairs]
    if command == "xrange":
        entries = client.xrange(key, f"{span[0]}-0", f"{span[1]}-0")
        ids = Field("$streamId", STRING, [str(i) for i, _ in entries])
        times = Field("$time", TIME, [int(str(i).split("-")[0]) for i, _ in entries])
        columns: dict[str, Field] = {}
        for row, (_, values) in enumerate(entries):
            for name, text in values.items():
                if name not in columns:
                    kind = _typed(name, text).type
                    columns[name] = Field(name, kind, [0.0 if kind == NUMBER else ""] * row)
                column = columns[name]
                column.values.append(float(text) if column.type == NUMBER else text)
            for column in columns.values():
                if len(column.values) <= row:
                    column.values.append(0.0 if column.type == NUMBER else "")
        return [ids, times, *columns.values()]
    raise AssertionError(f"the dashboards use no {command!r} query")


def variable_values(client: Any, query: str, regex: str | None) -> list[str]:
    """A query variable's options: the plugin's custom command, then the variable's regex."""
    result = client.execute_command(*shlex.split(query))
    values = [str(v) for v in result]
    if regex:
        pattern = re.compile(regex.strip("/"))
        found = [pattern.search(v) for v in values]
        values = list(dict.fromkeys(m.group(1) for m in found if m is not None))
    return values


def dashboard_variables(client: Any, model: dict[str, Any], prefix: str) -> dict[str, str]:
    """Each variable of a dashboard as Grafana picks it on load: the textbox ``prefix`` set to
    the run's prefix (its default is ``cs``), each query variable its first option in the
    variable's sort order."""
    values: dict[str, str] = {}
    for variable in model["templating"]["list"]:
        if variable["type"] == "textbox":
            assert variable["name"] == "prefix" and variable["query"] == "cs"
            values["prefix"] = prefix
            continue
        query = variable["query"]
        for name, value in values.items():
            query = query.replace(f"${{{name}}}", value)
        options = variable_values(client, query, variable.get("regex"))
        assert options, (variable["name"], query)
        options.sort(reverse=variable["sort"] == 2)
        values[variable["name"]] = options[0]
    return values


def _rows(frame: Frame) -> int:
    return max((len(f.values) for f in frame), default=0)


def transform(frame: Frame, steps: list[dict[str, Any]]) -> Frame:
    """Apply a panel's transformations in order."""
    for step in steps:
        frame = _STEPS[step["id"]](frame, step.get("options") or {})
    return frame


def _reduce(frame: Frame, options: dict[str, Any]) -> Frame:
    assert options == {
        "mode": "seriesToRows",
        "reducers": ["lastNotNull"],
        "includeTimeField": False,
    }
    numbers = [f for f in frame if f.type == NUMBER]
    last = [next((v for v in reversed(f.values) if v is not None), None) for f in numbers]
    return [Field("Field", STRING, [f.name for f in numbers]), Field("Last *", NUMBER, last)]


def _organize(frame: Frame, options: dict[str, Any]) -> Frame:
    excluded = options.get("excludeByName", {})
    kept = [f for f in frame if not excluded.get(f.name)]
    order = options.get("indexByName", {})
    if order:
        kept.sort(key=lambda f: order.get(f.name, len(order)))
    renames = options.get("renameByName", {})
    return [Field(renames.get(f.name, f.name), f.type, f.values) for f in kept]


def _sort_by(frame: Frame, options: dict[str, Any]) -> Frame:
    (rule,) = options["sort"]
    (column,) = [f for f in frame if f.name == rule["field"]]
    order = sorted(range(_rows(frame)), key=lambda i: column.values[i], reverse=rule["desc"])
    return [Field(f.name, f.type, [f.values[i] for i in order]) for f in frame]


def _extract(frame: Frame, options: dict[str, Any]) -> Frame:
    assert options["format"] == "regexp" and options["replace"] is False
    (source,) = [f for f in frame if f.name == options["source"]]
    # JavaScript's named groups (?<name>…) are Python's (?P<name>…).
    pattern = re.compile(options["regExp"].strip("/").replace("(?<", "(?P<"))
    matches = [pattern.search(str(v)) for v in source.values]
    names = list(pattern.groupindex)
    extracted = [
        Field(name, STRING, [m.group(name) if m else None for m in matches]) for name in names
    ]
    return [*frame, *extracted]


def _filter_by_name(frame: Frame, options: dict[str, Any]) -> Frame:
    include = options["include"]
    if "names" in include:
        return [f for f in frame if f.name in include["names"]]
    pattern = re.compile(include["pattern"])
    return [f for f in frame if pattern.search(f.name)]


_STEPS = {
    "reduce": _reduce,
    "organize": _organize,
    "sortBy": _sort_by,
    "extractFields": _extract,
    "filterFieldsByName": _filter_by_name,
}


def day_of(ms: int) -> str:
    """The UTC day of a time."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
