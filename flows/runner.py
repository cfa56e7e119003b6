"""Run the job: pick the source, prepare Kafka topics and the recovery store, start Bytewax."""

from __future__ import annotations

import gc
import logging
import os
import socket
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from flows import health, shutdown
from flows.dataflow import build_flow
from flows.exchange import Placement
from flows.recovery_store import prepare_store, recorded_partitions
from sources.alignment import ReadAlignment
from sources.files import JsonLinesSource
from sources.kafka import KafkaEventSource, ensure_topics
from state.outage import quiet_dropped_connections, redact
from state.settings import Settings

log = logging.getLogger(__name__)


def parse_source(spec: str, settings: Settings, *, tail: bool) -> Source[Any]:
    """Build the input from ``kafka`` or ``file:PATH[,PATH...]``.

    Raises:
        ValueError: for an unknown spec.
    """
    if spec == "kafka":
        return KafkaEventSource(
            settings.kafka_config(),
            settings.events_topics,
            settings.kafka_batch_size,
            tail=tail,
            group_id=settings.consumer_group,
            idle_s=settings.partition_idle_s,
            alignment=ReadAlignment(settings.alignment_max_drift_s * 1000),
            outage_limit_s=settings.outage_limit_s,
        )
    if spec.startswith("file:"):
        paths = [Path(p) for p in spec.removeprefix("file:").split(",") if p]
        return JsonLinesSource(paths, batch_size=settings.kafka_batch_size)
    msg = f"unknown source {spec!r}: use 'kafka' or 'file:PATH'"
    raise ValueError(msg)


def prepare_recovery(recovery_dir: Path) -> RecoveryConfig:
    """Open the recovery store: created with one partition on first use (``clickstream recovery
    init --partitions N`` makes one for a larger cluster), else checked to be whole.

    Raises:
        StoreError: when a partition is missing or foreign, or the counts disagree.
    """
    prepare_store(recovery_dir, recorded_partitions(recovery_dir) or 1)
    return RecoveryConfig(recovery_dir)


def prepare_topics(settings: Settings, source_spec: str) -> list[str]:
    """Create the event, dead-letter and offer topics the job needs, when configured to."""
    if not settings.kafka_create_topics:
        return []
    topics: list[str] = [settings.file_dlq_topic] if source_spec.startswith("file:") else []
    if source_spec == "kafka":
        topics += list(settings.events_topics)
        topics += [settings.dlq_topic_for(t) for t in settings.events_topics]
    if settings.campaigns_dir is not None:
        topics += [settings.offers_topic, settings.offer_decisions_topic]
    return ensure_topics(settings.kafka_config(), topics, settings.kafka_topic_partitions)


def check_redis_credentials(settings: Settings) -> None:
    """Fail at start, with the reason, when Redis refuses the job's password or its TLS
    certificate is not trusted: no wait for an outage would mend either. A Redis that does not
    answer yet is left to the outage handling (the job waits for it).

    Raises:
        RuntimeError: naming Redis and why it refused.
    """
    import redis

    from sinks.redis_projection import redis_client

    client = redis_client(settings.redis_url, settings.redis_options())
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError) as exc:
        msg = (
            f"Redis at {redact(settings.redis_url)} refused the job (CLICKSTREAM_REDIS_URL): {exc}"
        )
        raise RuntimeError(msg) from None
    except redis.ConnectionError as exc:
        if "certificate" in str(exc).lower():
            msg = (
                f"Redis at {redact(settings.redis_url)}: TLS certificate not trusted "
                f"(CLICKSTREAM_REDIS_SSL_CA_CERTS): {exc}"
            )
            raise RuntimeError(msg) from None
    finally:
        client.close()


def tune_gc() -> None:
    """Collect garbage less often: the state is millions of small, long-lived objects.

    With CPython's default thresholds the collector walks them again and again (measured:
    ~25% of the identity shards' time); the job's own objects rarely form cycles.
    """
    gc.set_threshold(100_000, 50, 100)
    gc.freeze()
    # The state keeps growing after the start: move what survived into the permanent
    # generation now and then, so a full collection never walks millions of state objects
    # (a pause of seconds that stalls every shard). Cyclic garbage frozen this way is not
    # collected; the state's objects do not form cycles.
    threading.Thread(target=_freeze_every, args=(GC_FREEZE_EVERY_S,), daemon=True).start()


GC_FREEZE_EVERY_S = 30.0


def _freeze_every(interval_s: float) -> None:
    while True:
        time.sleep(interval_s)
        gc.freeze()


ADDRESS_WAIT_S = 60.0
"""How long a cluster process waits for its own address to resolve (a new pod's DNS record)."""


def hostname_ordinal(hostname: str) -> int:
    """The process index a StatefulSet pod's name ends with (``rel-bank-clickstream-2`` → 2).

    Raises:
        ValueError: when the name does not end with ``-<number>``.
    """
    _, dash, ordinal = hostname.rpartition("-")
    if not dash or not ordinal.isdigit():
        msg = f"host name {hostname!r} does not end with -<process index>"
        raise ValueError(msg)
    return int(ordinal)


def listen_ports(settings: Settings, process_id: int | None) -> tuple[int, int]:
    """The API and health ports of process ``process_id`` (the health port 0: none).

    On one host the processes of a cluster add their id to the configured ports; with
    ``ports_per_process`` off (pods, each with its own address) every process uses them as given.
    """
    offset = (process_id or 0) if settings.ports_per_process else 0
    health_port = settings.health_port + offset if settings.health_port else 0
    return settings.api_port + offset, health_port


def wait_for_address(address: str, limit_s: float) -> None:
    """Wait until this process's ``host:port`` resolves: Bytewax binds it, and a new pod's DNS
    record in its headless Service appears shortly after the pod starts.

    Raises:
        RuntimeError: when the host still does not resolve after ``limit_s`` seconds.
    """
    host = address.rsplit(":", 1)[0]
    deadline = time.monotonic() + limit_s
    said = False
    while True:
        try:
            socket.getaddrinfo(host, None)
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                msg = f"this process's address {host} does not resolve after {limit_s:.0f} s: {exc}"
                raise RuntimeError(msg) from None
            if not said:
                log.warning("waiting for this process's address %s to resolve", host)
                said = True
        time.sleep(1.0)


def run_job(
    settings: Settings,
    source_spec: str,
    *,
    tail: bool = True,
    workers: int = 1,
    api: bool = True,
    process_id: int | None = None,
    addresses: list[str] | None = None,
) -> None:
    """Run the dataflow in this process until the input ends (or forever when tailing Kafka).

    Raises:
        RuntimeError: when Kafka or Redis refuse the job's credentials or certificate.
    """
    prepare_topics(settings, source_spec)
    check_redis_credentials(settings)
    source = parse_source(source_spec, settings, tail=tail)
    flow = build_flow(
        settings,
        source,
        snapshots=settings.recovery_dir is not None,
        workers=workers * len(addresses or [""]),
        placement=Placement.of_process(process_id or 0, len(addresses), workers)
        if addresses and len(addresses) > 1
        else None,
    )
    api_port, health_port = listen_ports(settings, process_id)
    if api:
        # Read by Bytewax's runtime: the dataflow API and Prometheus metrics at /metrics.
        os.environ["BYTEWAX_DATAFLOW_API_ENABLED"] = "true"
        os.environ["BYTEWAX_DATAFLOW_API_PORT"] = str(api_port)
        # The API caches the dataflow's shape in a folder (the working directory by default).
        cache = Path(tempfile.gettempdir()) / f"bank-clickstream-api-{os.getpid()}"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("BYTEWAX_DATAFLOW_API_CACHE_PATH", str(cache))
    quiet_dropped_connections()
    if health_port:
        health.serve(health_port)
    if addresses and len(addresses) > 1:
        wait_for_address(addresses[process_id or 0], ADDRESS_WAIT_S)
    execute(flow, settings, workers=workers, process_id=process_id, addresses=addresses)


def execute(
    flow: Dataflow,
    settings: Settings,
    *,
    workers: int = 1,
    process_id: int | None = None,
    addresses: list[str] | None = None,
) -> None:
    """Run a built dataflow as the job does: GC tuned, recovery store and epochs from settings."""
    recovery = prepare_recovery(settings.recovery_dir) if settings.recovery_dir else None
    tune_gc()
    shutdown.install(settings.stop_grace_s)
    cli_main(
        flow,
        workers_per_process=workers,
        process_id=process_id,
        addresses=addresses,
        epoch_interval=timedelta(seconds=settings.epoch_interval_s),
        recovery_config=recovery,
    )
    shutdown.stopped_cleanly()
