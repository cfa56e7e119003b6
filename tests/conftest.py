"""Shared fixtures: the real local servers, each test with its own topics, keys and prefix.

Tests that need Kafka, Redis or S3 use the ``services`` fixture. When a server does not answer,
the test fails under CI=true (CI must never pass by skipping) and is skipped otherwise, with the
command that starts the stack.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import redis
import s3fs
from confluent_kafka.admin import AdminClient

from state.settings import Settings, load_settings


@dataclass(frozen=True)
class Services:
    """Settings pointing at the local servers, with names unique to one test."""

    settings: Settings
    redis: redis.Redis
    s3: s3fs.S3FileSystem
    run_id: str


def _problem(settings: Settings) -> str | None:
    try:
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}).list_topics(timeout=5)
    except Exception as exc:
        return f"Kafka at {settings.kafka_bootstrap_servers}: {exc}"
    try:
        redis.Redis.from_url(settings.redis_url, socket_timeout=5).ping()
    except Exception as exc:
        return f"Redis at {settings.redis_url}: {exc}"
    try:
        s3fs.S3FileSystem(**settings.storage_options()).ls(settings.s3_bucket)
    except Exception as exc:
        return f"S3 at {settings.s3_endpoint_url} bucket {settings.s3_bucket}: {exc}"
    try:
        with urllib.request.urlopen(f"{settings.trino_url}/v1/info", timeout=5) as response:
            if json.loads(response.read()).get("starting", True):
                return f"Trino at {settings.trino_url} is still starting"
    except Exception as exc:
        return f"Trino at {settings.trino_url}: {exc}"
    return None


@pytest.fixture(scope="session")
def _servers_ready() -> None:
    problem = _problem(load_settings())
    if problem is not None:
        message = f"local stack not reachable ({problem}); start it with `make stack-up`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def fresh_services() -> Iterator[Services]:
    """Settings with a fresh events topic, Redis prefix and S3 prefix; Redis cleaned after."""
    run_id = uuid.uuid4().hex[:10]
    settings = load_settings(
        events_topics=(f"it-{run_id}.events",),
        file_dlq_topic=f"it-{run_id}.file.dlq",
        redis_prefix=f"it-{run_id}",
        s3_prefix=f"it-{run_id}",
    )
    client = redis.Redis.from_url(settings.redis_url)
    fs = s3fs.S3FileSystem(**settings.storage_options())
    try:
        yield Services(settings, client, fs, run_id)
    finally:
        for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000):
            client.delete(key)
        client.close()


@pytest.fixture
def services(_servers_ready: None) -> Iterator[Services]:
    """Settings with a fresh events topic, Redis prefix and S3 prefix for this test."""
    with fresh_services() as fresh:
        yield fresh


@pytest.fixture(scope="module")
def module_services(_servers_ready: None) -> Iterator[Services]:
    """The same, shared by the tests of a module (one expensive job run, several checks)."""
    with fresh_services() as fresh:
        yield fresh
