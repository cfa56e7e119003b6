"""Waiting out a dependency's outage: retried with backoff, said once, bounded, and visible on
the readiness endpoint."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import pytest
import redis

from flows.health import serve
from state.outage import Outage, ServiceDownError, redis_unreachable, services_down


class _Flaky:
    """Fails with ``error`` ``failures`` times, then answers."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "written"


def _ready(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_outage_is_waited_out_said_once_and_shown_as_not_ready(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = serve(0, "127.0.0.1")
    assert server is not None
    port = server.server_address[1]
    status: list[tuple[int, dict[str, object]]] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        status.append(_ready(port))

    flaky = _Flaky(5, redis.ConnectionError("Connection refused"))
    outage = Outage("Redis", "127.0.0.1:6379", redis_unreachable, 600, sleep=sleep)
    with caplog.at_level(logging.WARNING, "clickstream.outage"):
        assert outage.call(flaky) == "written"
    server.shutdown()

    assert flaky.calls == 6
    # Backoff: each wait up to twice the one before (with jitter, at least half of it).
    assert all(0.125 <= w <= 10 for w in waits) and waits[-1] > waits[0]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "Redis at 127.0.0.1:6379 is unreachable" in messages[0]
    assert "Redis at 127.0.0.1:6379 is back" in messages[1]
    assert all(code == 503 and body["down"] for code, body in status)
    assert services_down() == {}


def test_a_bad_request_is_not_an_outage() -> None:
    flaky = _Flaky(1, redis.ResponseError("WRONGTYPE"))
    outage = Outage("Redis", "here", redis_unreachable, 600, sleep=lambda s: None)
    with pytest.raises(redis.ResponseError):
        outage.call(flaky)
    assert flaky.calls == 1


def test_an_outage_longer_than_the_limit_stops_with_a_clear_message() -> None:
    flaky = _Flaky(1000, redis.ConnectionError("Connection refused"))
    outage = Outage("Redis", "127.0.0.1:6379", redis_unreachable, 0.05)
    with pytest.raises(ServiceDownError, match=r"unreachable for more than 0 s.*restart the job"):
        outage.call(flaky)
    assert flaky.calls >= 2
    assert "Redis" in services_down()
    # Back before anything else called: the next success says so and clears it.
    Outage("Redis", "127.0.0.1:6379", redis_unreachable, 600).call(_Flaky(0, ValueError()))
