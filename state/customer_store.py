"""The customer reference store: the core-banking extract in Redis, read by the job.

Layout (under the job's Redis prefix, see docs/customer-store.md):

- ``<prefix>:customers:current`` - a string, the live version (``v<N>``);
- ``<prefix>:customers:<version>:b<bucket>`` - hashes, customer_id → msgpack profile, 1,024
  buckets per version (so no single key grows huge and no key per customer is needed).

A load writes a new version completely, then switches ``current`` with one SET, then removes
the old version: a reader never sees a half-loaded set.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import redis
from cachetools import Cache, LRUCache

from state.outage import Outage

BUCKETS = 1024
UNKNOWN_SEGMENT = "unknown"
KNOWN_COLUMNS = ("customer_id", "segment", "sms_consent", "phone", "first_name", "products")
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


class CustomerProfile(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """What the core-banking extract says about a customer."""

    customer_id: str
    segment: str = UNKNOWN_SEGMENT
    sms_consent: bool | None = None
    """None when the extract does not say: treated as no consent (fail closed)."""
    phone: str | None = None
    first_name: str | None = None
    products: tuple[str, ...] = ()
    extra: dict[str, str] = {}


class LoadReport(msgspec.Struct):
    """The outcome of a load."""

    version: str
    rows: int = 0
    bad_rows: int = 0
    problems: list[str] = []
    seconds: float = 0.0


class ExtractError(ValueError):
    """The extract cannot be loaded at all (for example it has no customer_id column)."""


def current_key(prefix: str) -> str:
    """The key naming the live version."""
    return f"{prefix}:customers:current"


def bucket_key(prefix: str, version: str, customer_id: str) -> str:
    """The hash holding a customer's profile in a version."""
    return f"{prefix}:customers:{version}:b{zlib.crc32(customer_id.encode()) % BUCKETS}"


def parse_consent(text: str | None) -> tuple[bool | None, bool]:
    """``(consent, ok)``: true/yes/1 and false/no/0 in any case; empty is unknown."""
    if text is None or not text.strip():
        return None, True
    value = text.strip().lower()
    if value in _TRUE:
        return True, True
    if value in _FALSE:
        return False, True
    return None, False


def parse_row(row: dict[str, Any]) -> CustomerProfile | str:
    """A profile, or the reason the row is bad."""
    customer_id = (row.get("customer_id") or "").strip()
    if not customer_id:
        return "customer_id is empty"
    consent, ok = parse_consent(row.get("sms_consent"))
    if not ok:
        return f"sms_consent {row.get('sms_consent')!r} is not true/false/yes/no/1/0 or empty"
    products = tuple(p.strip() for p in (row.get("products") or "").split(";") if p.strip())
    extra = {k: str(v) for k, v in row.items() if k not in KNOWN_COLUMNS and v not in (None, "")}
    return CustomerProfile(
        customer_id,
        (row.get("segment") or "").strip() or UNKNOWN_SEGMENT,
        consent,
        (row.get("phone") or None),
        (row.get("first_name") or None),
        products,
        extra,
    )


def _batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if path.suffix == ".parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        return
    columns = pa_csv.open_csv(path).schema.names
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=8 << 20),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in columns}, strings_can_be_null=False
        ),
    )
    yield from reader


def parse_extract(path: Path, batch_rows: int = 50_000) -> Iterator[list[CustomerProfile | str]]:
    """Parse an extract (CSV with a header, or Parquet) batch by batch.

    Yields:
        One list per batch of rows, in file order: each row's profile, or the reason it is bad.

    Raises:
        ExtractError: the file has no ``customer_id`` column.
        FileNotFoundError: no such file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"customer extract not found: {path}")
    for batch in _batches(path, batch_rows):
        if "customer_id" not in batch.schema.names:
            msg = f"{path} has no customer_id column (columns: {', '.join(batch.schema.names)})"
            raise ExtractError(msg)
        yield [
            parse_row({k: None if v is None else str(v) for k, v in row.items()})
            for row in batch.to_pylist()
        ]


def load_customers(
    client: redis.Redis,
    prefix: str,
    path: Path,
    *,
    batch_rows: int = 50_000,
    on_progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Load an extract (CSV or Parquet) as a new version and make it the live one.

    Raises:
        ExtractError: the file has no ``customer_id`` column.
        FileNotFoundError: no such file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"customer extract not found: {path}")
    started = time.monotonic()
    version = f"v{client.incr(f'{prefix}:customers:version_seq')}"
    report = LoadReport(version)
    encode = msgspec.msgpack.encode
    line = 1  # the header is line 1 of a CSV
    try:
        for rows in parse_extract(path, batch_rows):
            pipe = client.pipeline(transaction=False)
            for parsed in rows:
                line += 1
                if isinstance(parsed, str):
                    report.bad_rows += 1
                    if len(report.problems) < 20:
                        report.problems.append(f"row {line}: {parsed}")
                    continue
                pipe.hset(
                    bucket_key(prefix, version, parsed.customer_id),
                    parsed.customer_id,
                    encode(parsed),
                )
                report.rows += 1
            pipe.execute()
            if on_progress is not None:
                on_progress(len(rows))
    except ExtractError:
        _drop_version(client, prefix, version)
        raise
    previous = client.get(current_key(prefix))
    client.set(current_key(prefix), version)
    if previous is not None and previous.decode() != version:  # type: ignore[union-attr]
        _drop_version(client, prefix, previous.decode())  # type: ignore[union-attr]
    report.seconds = time.monotonic() - started
    return report


def _drop_version(client: redis.Redis, prefix: str, version: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:customers:{version}:b*", count=1000))
    for start in range(0, len(keys), 500):
        client.unlink(*keys[start : start + 500])


class CustomerProfiles:
    """Reads profiles in batches with a bounded cache; notices a new version and drops it."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        cache_size: int = 200_000,
        version_check_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        outage: Outage | None = None,
    ) -> None:
        """Create a reader for the store under ``prefix``.

        Args:
            client: The store's Redis client.
            prefix: The key prefix of the store.
            cache_size: Profiles kept in memory, least recently used evicted first.
            version_check_s: Seconds between checks for a newly loaded extract.
            clock: Monotonic seconds (injected by tests).
            outage: Waits out the store's outages (see :mod:`state.outage`); without it the
                store's errors are raised.

        Raises:
            ValueError: When ``cache_size`` is below 1.
        """
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, not {cache_size}")
        self._client = client
        self._outage = outage
        self._prefix = prefix
        self._cache: LRUCache[str, CustomerProfile] = LRUCache(maxsize=cache_size)
        self._check_s = version_check_s
        self._clock = clock
        self._version: str | None = None
        self._checked_at = -float("inf")
        self._decode = msgspec.msgpack.Decoder(CustomerProfile).decode

    @property
    def cached(self) -> int:
        """Profiles held in memory."""
        return len(self._cache)

    def get_many(self, customer_ids: Iterable[str]) -> dict[str, CustomerProfile]:
        """Profiles of these customers; unknown ones get segment ``unknown`` and no consent."""
        self._check_version()
        wanted = list(dict.fromkeys(customer_ids))
        found: dict[str, CustomerProfile] = {}
        missing = []
        for customer_id in wanted:
            profile = self._cache.get(customer_id)  # a hit becomes the most recently used
            if profile is None:
                missing.append(customer_id)
            else:
                found[customer_id] = profile
        if missing:
            found.update(self._fetch(missing))
        return found

    def segments(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """Segments of these (distinct) customers; unknown ones get ``unknown``.

        The journeys' read, once per batch for every customer in it: a hit does not refresh
        the customer's place in the cache (the offers' :meth:`get_many` does), so a customer
        seen only here is evicted in insertion order and read again if still active.
        """
        self._check_version()
        cache = self._cache
        found: dict[str, str] = {}
        missing = []
        for customer_id in customer_ids:
            if customer_id in cache:
                # Cache's own lookup, not LRUCache's: it leaves the customer's place unchanged.
                found[customer_id] = Cache.__getitem__(cache, customer_id).segment
            else:
                missing.append(customer_id)
        if missing:
            for customer_id, profile in self._fetch(missing).items():
                found[customer_id] = profile.segment
        return found

    def _fetch(self, customer_ids: list[str]) -> dict[str, CustomerProfile]:
        """Read profiles from the store into the cache (evicting the least recently used)."""
        fetched: list[Any] = []
        if self._version is not None:
            pipe = self._client.pipeline(transaction=False)
            for customer_id in customer_ids:
                pipe.hget(bucket_key(self._prefix, self._version, customer_id), customer_id)
            fetched = self._call(pipe.execute)
        else:
            fetched = [None] * len(customer_ids)
        found: dict[str, CustomerProfile] = {}
        for customer_id, raw in zip(customer_ids, fetched, strict=True):
            profile = self._decode(raw) if raw is not None else CustomerProfile(customer_id)
            found[customer_id] = profile
            self._cache[customer_id] = profile
        return found

    def _call(self, action: Callable[[], Any]) -> Any:
        return action() if self._outage is None else self._outage.call(action)

    def _check_version(self) -> None:
        now = self._clock()
        if now - self._checked_at < self._check_s:
            return
        self._checked_at = now
        raw: Any = self._call(lambda: self._client.get(current_key(self._prefix)))
        version = None if raw is None else raw.decode()
        if version != self._version:
            self._version = version
            self._cache.clear()
