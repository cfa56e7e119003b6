"""Items that cross between processes as msgpack bytes instead of pickled objects.

On a cluster of processes Bytewax pickles every item routed to a worker in another process.
Pickling msgspec structs goes object by object (measured: ~8 µs per event for a shard's input,
round trip); msgpack of the same structs is C end to end (~1.5 µs), and a ``bytes`` pickles as
a copy. So on a cluster the busiest exchanges (decoded events to the identity shards, identified
events to the journeys, rows to the archive buffer, customers' events to the offers) carry
``bytes`` to keys on another process, and each receiving step unpacks what it gets. An item
whose key Bytewax routes to a worker of this process stays an object: it never leaves the
process, and packing it would only cost (measured: a quarter of a cluster worker's time went
into packing and unpacking, half of it for items that stayed). On one process nothing is packed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
from clickstream_native import bytewax_worker

T = TypeVar("T")
_encode = msgspec.msgpack.Encoder().encode


class Placement:
    """Which state keys Bytewax runs on a worker of this process.

    Bytewax routes a key to the worker its own hash of the key picks; the native core computes
    the same hash (``bytewax_worker``, checked against Bytewax in the tests).
    """

    def __init__(self, workers: int, local: range) -> None:
        """``workers`` in the whole cluster, ``local`` the indexes of this process's."""
        self._workers = workers
        self._local = local
        self._known: dict[str, bool] = {}

    @classmethod
    def of_process(cls, process_id: int, processes: int, workers_per_process: int) -> Placement:
        """The placement of one process of a cluster (workers are numbered process by process)."""
        first = process_id * workers_per_process
        return cls(processes * workers_per_process, range(first, first + workers_per_process))

    def is_local(self, key: str) -> bool:
        """Whether ``key``'s state lives in this process."""
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = bytewax_worker(key, self._workers) in self._local
        return known


class Exchange(Generic[T]):
    """Packs and unpacks one item type."""

    def __init__(self, kind: Any, placement: Placement | None = None) -> None:
        """``kind`` is the item type (a msgspec struct or a ``list[...]`` of one); without a
        ``placement`` (one process) nothing is packed.
        """
        self._placement = placement
        self._decode: Callable[[bytes], T] = msgspec.msgpack.Decoder(kind).decode

    def pack(self, key: str, item: T) -> T | bytes:
        """The item as it should cross to ``key``'s worker: bytes to another process."""
        placement = self._placement
        if placement is None or placement.is_local(key):
            return item
        return _encode(item)

    def unpack(self, values: list[T | bytes]) -> list[T]:
        """Every item of an activation back as objects."""
        decode = self._decode
        return [decode(v) if isinstance(v, bytes) else v for v in values]
