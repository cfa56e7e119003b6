"""Kafka: one KRaft node that is both broker and controller, run from Maven Central's jars."""

from __future__ import annotations

import base64
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from devstack import java, procs
from devstack.base import Service
from devstack.errors import StackError
from devstack.polling import poll_until
from devstack.tls import PASSWORD, USER, TlsFiles

JAVA_MINIMUM = 17
HEAP = "-Xmx768m"
HEALTHCHECK_TOPIC = "devstack-healthcheck"

# librdkafka logs every refused connection while a broker starts; keep that out of the output.
_QUIET = logging.getLogger("devstack.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too) into its parts.

    Args:
        address: The address.
        default_port: The port when the address has none.

    Returns:
        The host and the port.

    Raises:
        StackError: When the port is not a number.
    """
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, sep, port = address.rpartition(":")
        if not sep:
            host, port = address, ""
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise StackError(f"bad Kafka address {address!r} in kafka_bootstrap_servers") from None


def random_cluster_id() -> str:
    """A Kafka cluster id, made as ``kafka-storage random-uuid`` makes them."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class Kafka(Service):
    """Kafka 4 in KRaft mode: broker and controller in one JVM, every replication factor 1.

    The broker listens on the first address of ``kafka_bootstrap_servers``, the controller on
    the next port. Its jars are fetched once with Maven into ``.stack/kafka/libs``; its storage
    in ``.stack/data/kafka`` is formatted on the first start only and kept across restarts.
    """

    name = "kafka"
    title = "Kafka"
    ready_timeout_s = 120.0
    stop_timeout_s = 60.0
    _java: Path | None = None

    @property
    def _address(self) -> tuple[str, int]:
        return split_host_port(self.settings.kafka_brokers[0], 9092)

    @property
    def host(self) -> str:
        """The broker's host (first of the bootstrap servers)."""
        return self._address[0]

    @property
    def port(self) -> int:
        """The broker's port."""
        return self._address[1]

    @property
    def controller_port(self) -> int:
        """The KRaft controller's port: the broker's plus one."""
        return self.port + 1

    @property
    def secure_port(self) -> int:
        """The broker's SASL over TLS listener: the broker's port plus two."""
        return self.port + 2

    @property
    def faults_port(self) -> int:
        """A plain-text listener for fault tests, on the broker's port plus three.

        It tells clients to connect to :attr:`faults_proxy_port` instead, where a test puts
        a TCP proxy that it can cut: every connection of a client then goes through the
        proxy.
        """
        return self.port + 3

    @property
    def faults_proxy_port(self) -> int:
        """Where clients of :attr:`faults_port` are sent: the broker's port plus four."""
        return self.port + 4

    @property
    def ports(self) -> list[tuple[int, str]]:
        """The broker's (plain and SASL over TLS) and the controller's ports."""
        return [
            (self.port, "Kafka"),
            (self.controller_port, "Kafka controller"),
            (self.secure_port, "Kafka SASL_SSL"),
            (self.faults_port, "Kafka fault-test listener"),
        ]

    @property
    def tls(self) -> TlsFiles:
        """The CA and certificate of the SASL over TLS listener."""
        return TlsFiles(self.paths.home("tls"))

    @property
    def pom(self) -> Path:
        """The pom that lists the broker's jars."""
        return self.paths.scripts / "kafka" / "pom.xml"

    @property
    def libs(self) -> Path:
        """Where the jars are cached."""
        return self.paths.home(self.name) / "libs"

    @property
    def workdir(self) -> Path:
        """``.stack/kafka``: the data folder is a log dir, where only Kafka writes."""
        return self.paths.home(self.name)

    @property
    def server_properties(self) -> Path:
        """The generated broker configuration."""
        return self.paths.home(self.name) / "config" / "server.properties"

    def check_prerequisites(self) -> None:
        """Java 17+, and Maven when the jars are not cached yet.

        Raises:
            StackError: Naming what is missing.
        """
        self._java_path()
        if not java.jars_cached(self.pom, self.libs):
            java.require_maven("the Kafka jars")

    def prepare(self) -> None:
        """Fetch the jars (first start), write the configuration, format storage (first start).

        Raises:
            StackError: When Maven or the storage format fails.
        """
        if not java.jars_cached(self.pom, self.libs):
            self.report("fetching the Kafka jars with Maven (first start only) ...")
            began = time.monotonic()
            java.fetch_jars(self.pom, self.libs, self.paths.home("m2"), self.paths.log("maven"))
            self.report(f"fetched the Kafka jars in {time.monotonic() - began:.1f} s")
        self.server_properties.parent.mkdir(parents=True, exist_ok=True)
        self.tls.ensure()
        self.server_properties.write_text(self._properties())
        if not (self.data_dir / "meta.properties").is_file():
            self._format()

    def _properties(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port, controller, secure = self.port, self.controller_port, self.secure_port
        faults, proxied = self.faults_port, self.faults_proxy_port
        plain_users = f'user_{USER}="{PASSWORD}"'
        values = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{controller}",
            "listeners": (
                f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller},"
                f"SASL_SSL://{host}:{secure},FAULTS://{host}:{faults}"
            ),
            "advertised.listeners": (
                f"PLAINTEXT://{host}:{port},SASL_SSL://{host}:{secure},FAULTS://{host}:{proxied}"
            ),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,FAULTS:PLAINTEXT"
            ),
            # The secured listener, as a bank's brokers have it: SASL (SCRAM, and PLAIN) over
            # TLS with a certificate from the stack's own CA (devstack/tls.py).
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(self.tls.server_key_and_chain),
            "log.dirs": str(self.data_dir),
            "num.partitions": "4",
            "auto.create.topics.enable": "true",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "168",
        }
        lines = [f"{key}={value}" for key, value in values.items()]
        return "# Written by devstack on every start; edit devstack/services/kafka.py.\n" + (
            "\n".join(lines) + "\n"
        )

    def _java_path(self) -> Path:
        if self._java is None:
            self._java = java.find_java(JAVA_MINIMUM, self.title)
        return self._java

    def _java_command(self, main: str, *args: str) -> list[str]:
        return [
            str(self._java_path()),
            "-Xms256m",
            HEAP,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.paths.scripts / 'kafka' / 'log4j2.xml'}",
            "-cp",
            str(self.libs / "*"),
            main,
            *args,
        ]

    def _format(self) -> None:
        self.report("formatting Kafka's storage (first start only) ...")
        command = self._java_command(
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "--cluster-id",
            random_cluster_id(),
            "--config",
            str(self.server_properties),
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        returncode, offset = procs.run_logged(command, self.log_file, timeout=180)
        if returncode != 0:
            raise StackError(
                f"formatting Kafka's storage in {self.data_dir} failed "
                f"(exit code {returncode}).\nLast lines of {self.log_file}:\n"
                f"{procs.tail(self.log_file, 30, offset)}"
            )

    def command(self) -> list[str]:
        """``java ... kafka.Kafka server.properties``."""
        return self._java_command("kafka.Kafka", str(self.server_properties))

    def _config(self, timeout: float) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.settings.kafka_brokers[0],
            "socket.timeout.ms": max(1000, int(timeout * 1000)),
            "logger": _QUIET,
        }

    def probe(self, timeout: float) -> None:
        """A metadata request that must list at least one broker.

        Args:
            timeout: Seconds the request may take.

        Raises:
            RuntimeError: When no broker is listed.
            confluent_kafka.KafkaException: When the request fails.
        """
        from confluent_kafka.admin import AdminClient

        metadata = AdminClient(self._config(timeout)).list_topics(timeout=timeout)
        if not metadata.brokers:
            raise RuntimeError("the metadata lists no broker yet")

    def after_ready(self, started: bool) -> None:
        """After a start, prove the broker works: create a topic, produce, consume back.

        Args:
            started: Only then is the round trip made.

        Raises:
            StackError: When the round trip fails.
        """
        if started:
            try:
                add_scram_user(self._config(10.0), USER, PASSWORD)
                round_trip(self._config(10.0), HEALTHCHECK_TOPIC, timeout=60.0)
            except Exception as exc:
                raise StackError(
                    f"Kafka answers metadata requests but a produce/consume round trip on "
                    f"topic {HEALTHCHECK_TOPIC!r} failed: {exc}"
                ) from exc


def add_scram_user(config: dict[str, Any], user: str, password: str) -> None:
    """Give ``user`` SCRAM-SHA-256 and -512 credentials (replacing older ones).

    Args:
        config: librdkafka settings of a listener that may change credentials.
        user: The SASL user.
        password: Its password.
    """
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin._scram import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialAlteration,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient(config)
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        # One alteration per user and request.
        upsert: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(
                user, ScramCredentialInfo(mechanism, 8192), password.encode()
            )
        ]
        for future in admin.alter_user_scram_credentials(upsert).values():
            future.result(30)


def round_trip(config: dict[str, Any], topic: str, timeout: float) -> float:
    """Create ``topic`` if missing, produce one message to it and read that message back.

    Args:
        config: librdkafka settings with at least ``bootstrap.servers``.
        topic: The topic (one partition when created here).
        timeout: Overall seconds allowed.

    Returns:
        Seconds the round trip took.

    Raises:
        RuntimeError: When a step fails or the deadline passes.
    """
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    began = time.monotonic()

    def left() -> float:
        return timeout - (time.monotonic() - began)

    admin = AdminClient(config)  # must outlive its futures
    futures = admin.create_topics([NewTopic(topic, 1, 1)])
    try:
        futures[topic].result(timeout)
    except Exception as exc:
        error = exc.args[0] if exc.args else None
        if not (isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise

    marker = uuid.uuid4().hex.encode()
    delivered: list[Any] = []
    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    producer.produce(topic, marker, on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(max(1.0, left()))
    if not delivered or delivered[0][0] is not None:
        raise RuntimeError(f"produce failed: {delivered[0][0] if delivered else 'no delivery'}")
    offset = delivered[0][1].offset()

    consumer = Consumer({**config, "group.id": "devstack-healthcheck", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, offset)])

        def read_marker() -> bool:
            message = consumer.poll(1.0)
            if message is None:
                return False
            if message.error():
                raise RuntimeError(f"consume failed: {message.error()}")
            return message.value() == marker

        # The consumer's poll waits for messages itself: no pause between reads.
        if poll_until(read_marker, left(), 0.0):
            return time.monotonic() - began
        raise RuntimeError(f"the produced message was not read back within {timeout:.0f} s")
    finally:
        consumer.close()
