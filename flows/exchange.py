"""Items that cross between processes as msgpack bytes instead of pickled objects.

On a cluster of processes Bytewax pickles every item routed to a worker in another process.
Pickling msgspec structs goes object by object (measured: ~8 µs per event for a shard's input,
round trip); msgpack of the same structs is C end to end (~3 µs), and a ``bytes`` pickles as a
copy. So on a cluster the busiest exchanges (decoded events to the identity shards, identified
events to the journeys, rows to the archive buffer, customers' events to the offers) carry
``bytes``, and each receiving step unpacks what it gets. On one process nothing crosses a
process and nothing is packed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")
_encode = msgspec.msgpack.Encoder().encode


class Exchange(Generic[T]):
    """Packs and unpacks one item type."""

    def __init__(self, kind: Any, *, packed: bool) -> None:
        """``kind`` is the item type (a msgspec struct or a ``list[...]`` of one)."""
        self.packed = packed
        self._decode: Callable[[bytes], T] = msgspec.msgpack.Decoder(kind).decode

    def pack(self, item: T) -> T | bytes:
        """The item as it should cross: bytes on a cluster, itself otherwise."""
        return _encode(item) if self.packed else item

    def unpack(self, values: list[T | bytes]) -> list[T]:
        """Every item of an activation back as objects."""
        decode = self._decode
        return [decode(v) if isinstance(v, bytes) else v for v in values]
