"""A query of the Redis data source plugin (``redis-datasource``, 2.2.0) as the SDK's data query.

The plugin answers each command with one data frame (its ``pkg/redis-*.go``):

- ``hgetall``: one row, a column per hash field (numbers as float64);
- ``hget``: one row, one column named after the field;
- ``zrange`` (always ``WITHSCORES``): one row, a column per member, ascending by score;
- ``xrange``: a row per stream entry, ``$streamId``, ``$time`` (from the id) and a column per
  entry field, over the dashboard's time range unless ``start``/``end`` are given.

Only ``keyName``, ``field`` and ``query`` go through Grafana's variable interpolation, so every
variable part of a query (the prefix, the day) lives in the key. ``frames.py`` in tests/support
reproduces these frames from a real Redis to check each panel's query.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

PLUGIN = "redis-datasource"
DATASOURCE_UID = "bank-clickstream-redis"
DATASOURCE = DataSourceRef(type_val=PLUGIN, uid=DATASOURCE_UID)
Command = Literal["hgetall", "hget", "zrange", "xrange"]


class RedisQuery(cogvariants.Dataquery):
    """One Redis command of a panel."""

    def __init__(
        self,
        ref_id: str,
        command: Command,
        key: str,
        *,
        field: str | None = None,
        start: str | None = None,
        stop: str | None = None,
    ) -> None:
        """``start``/``stop`` are the index range of ``zrange`` (``-10``, ``-1``: the top 10)."""
        self.ref_id = ref_id
        self.command = command
        self.key = key
        self.field = field
        self.start = start
        self.stop = stop

    def to_json(self) -> dict[str, Any]:
        """As the plugin's query editor saves it."""
        data: dict[str, Any] = {
            "refId": self.ref_id,
            "datasource": {"type": PLUGIN, "uid": DATASOURCE_UID},
            "type": "command",
            "command": self.command,
            "keyName": self.key,
            "streaming": False,
        }
        if self.field is not None:
            data["field"] = self.field
        if self.command == "zrange":
            data["min"], data["max"] = self.start or "0", self.stop or "-1"
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Back from a dashboard's JSON."""
        return cls(
            data["refId"],
            data["command"],
            data["keyName"],
            field=data.get("field"),
            start=data.get("min"),
            stop=data.get("max"),
        )


class Query(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of a :class:`RedisQuery`, for ``Panel.with_target``."""

    def __init__(self, query: RedisQuery) -> None:
        """Wrap the query."""
        self._query = query

    def build(self) -> cogvariants.Dataquery:
        """The query."""
        return self._query


def hgetall(key: str, ref_id: str = "A") -> Query:
    """Every field of a hash: one row, a column per field."""
    return Query(RedisQuery(ref_id, "hgetall", key))


def hget(key: str, field: str, ref_id: str = "A") -> Query:
    """One field of a hash: one row, one column."""
    return Query(RedisQuery(ref_id, "hget", key, field=field))


def zrange(key: str, start: str = "0", stop: str = "-1", ref_id: str = "A") -> Query:
    """Members of a sorted set by rank with their scores: one row, a column per member."""
    return Query(RedisQuery(ref_id, "zrange", key, start=start, stop=stop))


def xrange(key: str, ref_id: str = "A") -> Query:
    """A stream's entries in the dashboard's time range: a row per entry, ``$time`` its id."""
    return Query(RedisQuery(ref_id, "xrange", key))


def register() -> None:
    """Let ``Dashboard.from_json`` read the queries back as :class:`RedisQuery`."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=PLUGIN, from_json_hook=RedisQuery.from_json)
    )
