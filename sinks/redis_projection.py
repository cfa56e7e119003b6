"""Redis sink: applies absolute-value writes in one pipeline per batch.

Nothing is buffered between batches: every write is an absolute value computed from recoverable
state, so a replay after a crash repeats writes instead of adding to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from state.outage import DEFAULT_LIMIT_S, Outage, redact, redis_unreachable
from state.records import HashWrite, RedisWrite, StreamEntry, ZSetWrite

_STREAM_ID_TAKEN = "equal or smaller than the target stream top item"


def redis_client(url: str, options: Mapping[str, Any] | None = None) -> redis.Redis:
    """A client for ``url`` (``options``: more redis-py settings, e.g. the TLS CA of
    ``Settings.redis_options``) that fails fast on a dead connection (so that an outage is
    noticed and waited out, see :mod:`state.outage`) rather than hanging.
    """
    return redis.Redis.from_url(
        url, socket_connect_timeout=5, socket_timeout=30, **dict(options or {})
    )


def apply_writes(client: redis.Redis, writes: Iterable[RedisWrite]) -> int:
    """Apply writes in one pipeline; return how many keys were written.

    A stream entry whose id is already there was written before a crash: it is final, so the
    repeat is skipped. Any other Redis error is raised.
    """
    pipe = client.pipeline(transaction=False)
    count = 0
    for write in writes:
        if isinstance(write, HashWrite):
            if write.fields:
                pipe.hset(write.key, mapping=write.fields)  # type: ignore[arg-type]
                if write.expire_s is not None:
                    pipe.expire(write.key, write.expire_s)
                count += 1
        elif isinstance(write, ZSetWrite):
            if write.scores:
                pipe.zadd(write.key, write.scores)
                if write.expire_s is not None:
                    pipe.expire(write.key, write.expire_s)
                count += 1
        elif isinstance(write, StreamEntry):
            if write.max_len is not None:
                pipe.xadd(
                    write.key,
                    write.fields,  # type: ignore[arg-type]
                    id=f"{write.id_ms}-0",
                    maxlen=write.max_len,
                    approximate=True,
                )
            else:
                pipe.xadd(write.key, write.fields, id=f"{write.id_ms}-0")  # type: ignore[arg-type]
            count += 1
    if count == 0:
        return 0
    results = pipe.execute(raise_on_error=False)
    for result in results:
        if isinstance(result, redis.ResponseError) and _STREAM_ID_TAKEN not in str(result):
            raise result
    return count


class _RedisPartition(StatelessSinkPartition[list[RedisWrite]]):
    def __init__(self, client: redis.Redis, outage: Outage) -> None:
        self._client = client
        self._outage = outage

    def write_batch(self, items: list[list[RedisWrite]]) -> None:
        writes = [write for batch in items for write in batch]
        # Every write is an absolute value (a stream entry's repeat is skipped): a pipeline cut
        # by an outage is written again whole.
        self._outage.call(lambda: apply_writes(self._client, writes))

    def close(self) -> None:
        self._client.close()


class RedisProjectionSink(DynamicSink[list[RedisWrite]]):
    """Writes lists of :class:`~state.records.RedisWrite` to Redis, one pipeline per batch."""

    def __init__(
        self,
        url: str,
        outage_limit_s: float = DEFAULT_LIMIT_S,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the sink for the Redis at ``url`` (``options``: more redis-py settings); it
        waits out an outage of up to ``outage_limit_s`` (see :mod:`state.outage`).
        """
        self._url = url
        self._outage_limit_s = outage_limit_s
        self._options = dict(options or {})

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RedisPartition:
        """Open this worker's connection."""
        outage = Outage("Redis", redact(self._url), redis_unreachable, self._outage_limit_s)
        return _RedisPartition(redis_client(self._url, self._options), outage)
