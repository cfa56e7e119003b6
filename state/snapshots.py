"""Versioned snapshots: state is stored as msgpack bytes, immutable and cheap to copy.

Every snapshot struct has a ``version`` field; restoring a version the code does not know fails
loudly instead of silently misreading old state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class SnapshotVersionError(ValueError):
    """The recovery store holds a snapshot version this code cannot restore."""


def encode_snapshot(state: msgspec.Struct) -> bytes:
    """Encode a snapshot struct to msgpack bytes."""
    return msgspec.msgpack.encode(state)


def decode_snapshot(
    snapshot: bytes,
    kind: type[T],
    supported: int,
    migrate: Callable[[int, bytes], T] | None = None,
) -> T:
    """Decode a snapshot of ``kind``, checking its ``version`` first.

    Args:
        snapshot: the stored bytes.
        kind: the current snapshot type.
        supported: the current version.
        migrate: turns an older version into the current type (raises for unknown ones).

    Raises:
        SnapshotVersionError: when the stored version is not ``supported`` and cannot be
            migrated.
    """
    raw: Any = msgspec.msgpack.decode(snapshot)
    version = raw.get("version") if isinstance(raw, dict) else None
    if version != supported and migrate is not None and isinstance(version, int):
        return migrate(version, snapshot)
    if version != supported:
        msg = (
            f"{kind.__name__} version {version!r} cannot be restored (this code reads {supported})"
        )
        raise SnapshotVersionError(msg)
    return msgspec.msgpack.decode(snapshot, type=kind)
