"""bank-clickstream's per-customer state, compiled (native/src)."""

from collections.abc import Callable, Iterable
from typing import Any

IDENTITY_SNAPSHOT_VERSION: int
JOURNEYS_SNAPSHOT_VERSION: int
FIGURE_FAMILIES: int

class ShardCore:
    """A shard's remembered event ids and the identities of its devices (native/src)."""

    def __init__(
        self,
        gap_ms: int,
        idle_ms: int,
        journey_shard_name: Callable[[str], str],
        force_setattr: Callable[[Any, str, Any], None],
        identities: bytes | None = None,
        seen: dict[int, list[str]] | None = None,
        undecided: bytes | None = None,
    ) -> None: ...
    def take(
        self, arrivals: list[Any], watermark_ms: int, offers: bool
    ) -> tuple[
        dict[int, dict[str, int]],
        int,
        int,
        int,
        dict[str, list[Any]],
        dict[str, list[Any]] | None,
    ]: ...
    def resolve(self, watermark_ms: int, everything: bool = False) -> int: ...
    def journey_batches(self) -> dict[str, bytes]: ...
    def free_idle(self, watermark_ms: int) -> int: ...
    def evict(self, cutoff: int, cap: int) -> None: ...
    def seen_segments(self) -> dict[int, bytes]: ...
    def identities_snapshot(self) -> bytes: ...
    def undecided_snapshot(self) -> bytes: ...
    @property
    def remembered_ids(self) -> int: ...
    @property
    def device_count(self) -> int: ...
    @property
    def undecided_count(self) -> int: ...

class JourneysCore:
    """A journeys shard's open sessions and day figures (native/src/journeys.rs)."""

    def __init__(
        self,
        gap_ms: int,
        stitch_allowance_ms: int,
        funnels: list[tuple[list[tuple[str, str]], int]],
        snapshot: bytes | None = None,
    ) -> None: ...
    def take(
        self,
        batches: list[bytes],
        upstream_ms: int,
        segments: Callable[[Iterable[str]], dict[str, str]],
    ) -> tuple[dict[tuple[int, int], dict[str, int]], dict[int, dict[str, int]], bytes, int]: ...
    def flush(
        self, segments: Callable[[Iterable[str]], dict[str, str]]
    ) -> tuple[dict[tuple[int, int], dict[str, int]], dict[int, dict[str, int]], bytes, int]: ...
    def open_from_ms(self) -> int: ...
    upstream_ms: int
    @property
    def open_identities(self) -> int: ...
    def snapshot(self) -> bytes: ...

def bytewax_worker(key: str, workers: int) -> int: ...
