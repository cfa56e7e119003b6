"""A dependency's outage waited out: bounded retries with backoff and jitter, said once.

While Redis, S3 or another server the job writes to or reads from is unreachable, the call that
needs it waits and tries again, so the stream holds where it is: no batch is acknowledged, no
state moves past what was written, nothing is dropped. The log says once which service is down
and since when, and once when it is back; :func:`services_down` tells the readiness endpoint.
Past the limit the call raises :class:`ServiceDownError`, the job stops with that message, and a
restart resumes from the recovery store with nothing lost or counted twice.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")

logger = logging.getLogger("clickstream.outage")

DEFAULT_LIMIT_S = 600.0
FIRST_WAIT_S = 0.25
LONGEST_WAIT_S = 10.0

_lock = threading.Lock()
_down: dict[str, float] = {}
"""Service → wall-clock time it was first found unreachable in this outage."""


class ServiceDownError(RuntimeError):
    """A dependency stayed unreachable for longer than the job may wait."""


def services_down() -> dict[str, float]:
    """The services unreachable now, with the wall-clock time each outage began."""
    with _lock:
        return dict(_down)


class Outage:
    """Waits out one service's outages for the calls made through :meth:`call`."""

    def __init__(
        self,
        service: str,
        where: str,
        transient: Callable[[BaseException], bool],
        limit_s: float = DEFAULT_LIMIT_S,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Retry calls to ``service`` (at ``where``, for the log) that fail with an error
        ``transient`` accepts, for up to ``limit_s`` seconds of outage.
        """
        self.service = service
        self._where = where
        self._transient = transient
        self._limit_s = limit_s
        self._sleep = sleep

    def call(self, action: Callable[[], T]) -> T:
        """Run ``action``; while the service is unreachable, wait and run it again.

        Raises:
            ServiceDownError: when the outage has lasted longer than the limit.
        """
        attempt = 0
        while True:
            try:
                result = action()
            except Exception as error:
                if not self._transient(error):
                    raise
                self.down(error)
                wait = min(LONGEST_WAIT_S, FIRST_WAIT_S * 2**attempt)
                self._sleep(wait * random.uniform(0.5, 1.0))
                attempt += 1
                continue
            if attempt:
                self.up()
            return result

    def down(self, error: BaseException | str) -> None:
        """Note that the service is unreachable (said once per outage), for a caller that does
        its own waiting (a Kafka consumer retries by itself).

        Raises:
            ServiceDownError: when the outage has lasted longer than the limit.
        """
        since = self._noticed(error)
        if time.time() - since > self._limit_s:
            msg = (
                f"{self.service} at {self._where} has been unreachable for more than "
                f"{self._limit_s:.0f} s ({error}); the job stops. Once it is back, "
                "restart the job: it resumes from its recovery store with nothing lost "
                "or counted twice."
            )
            logger.error("%s", msg)
            raise ServiceDownError(msg)

    def up(self) -> None:
        """Note that the service answers (said once, if it was down)."""
        if self.service in _down:
            self._recovered()

    def _noticed(self, error: BaseException | str) -> float:
        with _lock:
            since = _down.get(self.service)
            if since is None:
                since = _down[self.service] = time.time()
                logger.warning(
                    "%s at %s is unreachable (%s): holding the stream (nothing is acknowledged "
                    "or lost) and retrying with backoff; the job stops if it is still down "
                    "after %.0f s",
                    self.service,
                    self._where,
                    error,
                    self._limit_s,
                )
            return since

    def _recovered(self) -> None:
        with _lock:
            since = _down.pop(self.service, None)
        if since is not None:
            started = datetime.fromtimestamp(since, UTC).strftime("%H:%M:%S")
            logger.warning(
                "%s at %s is back (down since %s UTC, %.0f s)",
                self.service,
                self._where,
                started,
                time.time() - since,
            )


class _DroppedConnections(logging.Filter):
    """asyncio's "Task exception was never retrieved" for each request an S3 outage cut: the
    outage is said once by :class:`Outage`, not once per dropped connection.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        context = getattr(record, "msg", "")
        dropped = error is not None and type(error).__name__ == "ClientConnectionResetError"
        return not (dropped or "ClientConnectionResetError" in str(context))


def quiet_dropped_connections() -> None:
    """Leave the per-request noise of an S3 outage out of the log."""
    logging.getLogger("asyncio").addFilter(_DroppedConnections())


def redact(url: str) -> str:
    """A server's URL for the log: its host and port, never a password in it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.hostname else parts.scheme or "?"


def redis_unreachable(error: BaseException) -> bool:
    """A Redis error that means the server cannot be reached (not a bad command)."""
    import redis

    return isinstance(error, redis.ConnectionError | redis.TimeoutError)


def s3_unreachable(error: BaseException) -> bool:
    """An S3 error that means the endpoint cannot be reached or answered with a server error."""
    import aiohttp
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    unreachable = (
        EndpointConnectionError,
        ConnectionClosedError,
        ConnectTimeoutError,
        ReadTimeoutError,
        aiohttp.ClientError,
        ConnectionError,
        TimeoutError,
    )
    if isinstance(error, unreachable):
        return True
    cause = error.__cause__ or error.__context__
    return cause is not None and cause is not error and s3_unreachable(cause)
