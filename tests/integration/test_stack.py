"""The local stack answers: Kafka metadata and a round trip, Redis PING, the S3 bucket.

Start it first with ``scripts/stack.sh up`` (``make test`` does). The addresses come from the
settings, so pointed at a real deployment this checks that instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import StackPaths, down, status, up
from devstack.base import Service
from devstack.services import S3, SERVICES, Kafka, Redis
from devstack.services.kafka import HEALTHCHECK_TOPIC, round_trip
from state.settings import Settings, load_settings

# _servers_ready (tests/conftest.py) skips these when the stack is down, or fails them under CI.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("_servers_ready")]


@pytest.fixture(scope="module")
def settings() -> Settings:
    """The settings the stack was started with."""
    return load_settings()


def test_every_service_is_ready(settings: Settings) -> None:
    found = status(settings=settings)
    assert [s.name for s in found] == [cls.name for cls in SERVICES]
    not_ready = {s.name: f"{s.state} {s.detail}".strip() for s in found if not s.ready}
    assert not not_ready, f"not ready (start the stack with scripts/stack.sh up): {not_ready}"


@pytest.mark.parametrize("service_class", SERVICES, ids=[cls.name for cls in SERVICES])
def test_service_answers_a_real_request(service_class: type[Service], settings: Settings) -> None:
    service = service_class(settings, StackPaths.default())
    assert service.answer(timeout=10.0) is None


def test_kafka_metadata_lists_the_broker(settings: Settings) -> None:
    from confluent_kafka.admin import AdminClient

    kafka = Kafka(settings, StackPaths.default())
    metadata = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}).list_topics(
        timeout=10
    )
    assert [f"{b.host}:{b.port}" for b in metadata.brokers.values()] == [kafka.endpoint]


def test_kafka_produce_consume_round_trip(settings: Settings) -> None:
    took = round_trip(
        {"bootstrap.servers": settings.kafka_bootstrap_servers}, HEALTHCHECK_TOPIC, timeout=60.0
    )
    assert took < 60.0


def test_redis_answers_ping(settings: Settings) -> None:
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        assert client.ping() is True
        assert Redis(settings, StackPaths.default()).status().ready
    finally:
        client.close()


def test_s3_lists_the_settings_bucket(settings: Settings) -> None:
    s3 = S3(settings, StackPaths.default())
    names = {bucket["Name"] for bucket in s3.client().list_buckets()["Buckets"]}
    assert settings.s3_bucket in names


def test_redis_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    """A Redis of the stack's own (its own folder and port) stopped and started again still has
    what was written: the customer store and the figures do not vanish with a restart."""
    import redis

    settings = load_settings(redis_url="redis://127.0.0.1:6391/0")
    paths = StackPaths(tmp_path)
    up(["redis"], settings, paths)
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        client.hset("cs:customers:v1:0", "C1", b"profile")
        client.close()
        down(["redis"], settings, paths)
        assert not Redis(settings, paths).status().ready
        up(["redis"], settings, paths)
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        assert client.hget("cs:customers:v1:0", "C1") == b"profile"
        client.close()
    finally:
        down(["redis"], settings, paths)
