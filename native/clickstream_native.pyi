"""bank-clickstream's per-customer state, compiled (native/src)."""

from collections.abc import Callable
from typing import Any

IDENTITY_SNAPSHOT_VERSION: int

class ShardCore:
    """A shard's remembered event ids and the identities of its devices (native/src)."""

    def __init__(
        self,
        gap_ms: int,
        idle_ms: int,
        session_event: Callable[..., Any],
        journey_shard_name: Callable[[str], str],
        force_setattr: Callable[[Any, str, Any], None],
        identities: bytes | None = None,
        seen: dict[int, list[str]] | None = None,
    ) -> None: ...
    def take(
        self, arrivals: list[Any], watermark_ms: int, undecided: dict[str, Any], offers: bool
    ) -> tuple[
        dict[int, dict[str, int]],
        int,
        int,
        int,
        dict[str, list[Any]],
        dict[str, list[tuple[str, Any]]],
        dict[str, list[Any]] | None,
    ]: ...
    def resolve(self, watermark_ms: int, everything: bool = False) -> list[tuple[str, str]]: ...
    def free_idle(self, watermark_ms: int) -> int: ...
    def evict(self, cutoff: int, cap: int) -> None: ...
    def seen_segments(self) -> dict[int, bytes]: ...
    def identities_snapshot(self) -> bytes: ...
    @property
    def remembered_ids(self) -> int: ...
    @property
    def device_count(self) -> int: ...
    @property
    def undecided_count(self) -> int: ...

def bytewax_worker(key: str, workers: int) -> int: ...
