"""The job on secured connections, as a bank runs it: Kafka with SASL (SCRAM or PLAIN) over TLS,
Redis with an ACL user's password over TLS. The local stack starts its broker with a SASL_SSL
listener and a certificate of its own CA, and its Redis with that user (``devstack/tls.py``);
Redis's TLS is a terminator in front of it (the local Valkey is built without TLS).

Every figure and offer must be what the plain-text run gives, no password may appear in the
job's output, and a wrong password or an untrusted certificate must stop the job at once with
the reason, not leave it waiting."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest
from pydantic import SecretStr

from devstack.paths import StackPaths
from devstack.services.kafka import Kafka
from devstack.tls import PASSWORD, USER, TlsFiles
from flows.runner import prepare_topics
from sinks.redis_projection import redis_client
from sources.customer_sample import sample_rows
from sources.simulator import SimulationConfig, generate
from sources.simulator_output import KafkaWriter
from state.settings import Settings
from tests.conftest import Services
from tests.support.customers import load_simulated_customers
from tests.support.exact import assert_journeys_exact, assert_minute_series_complete
from tests.support.job import ROOT, job_command, run_job, settings_env, with_offers
from tests.support.journey_reference import figures
from tests.support.offers_reference import expected_offers
from tests.support.readback import redis_dump, topic_values
from tests.support.reference import expected_from
from tests.support.shipped_campaigns import SPECS
from tests.support.tls_proxy import TlsTerminator

TLS = TlsFiles(StackPaths.default().home("tls"))


def _secured(settings: Settings, redis_tls_port: int, mechanism: str, **update: object) -> Settings:
    """``settings`` on the stack's SASL_SSL listener and, through the terminator, Redis over TLS
    as the ACL user."""
    secure_port = Kafka(settings, StackPaths.default()).secure_port
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": f"127.0.0.1:{secure_port}",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": USER,
            "kafka_sasl_password": SecretStr(PASSWORD),
            "kafka_ssl_ca_location": TLS.ca,
            "redis_url": f"rediss://{USER}:{PASSWORD}@localhost:{redis_tls_port}/0",
            "redis_ssl_ca_certs": TLS.ca,
            **update,
        }
    )


@pytest.fixture
def terminator(services: Services) -> Iterator[TlsTerminator]:
    """TLS with the stack's certificate in front of the local Redis."""
    port = urlsplit(services.settings.redis_url).port or 6379
    with TlsTerminator("127.0.0.1", port, TLS.server_certificate, TLS.server_key) as front:
        yield front


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_the_job_on_sasl_over_tls_and_redis_over_tls_gives_every_figure_and_offer(
    services: Services, terminator: TlsTerminator, tmp_path: Path, mechanism: str
) -> None:
    plain = with_offers(services.settings, tmp_path / "campaigns", offers_holdout_share=0.05)
    settings = _secured(plain, terminator.port, mechanism)
    prepare_topics(settings, "kafka")
    # A morning in Warsaw (where the offers' quiet hours end) for 800 customers.
    config = SimulationConfig(
        customers=800, rate=8.0, duration_s=3 * 3600, seed=2207, duplicate_rate=0.01,
        malformed_rate=0.002, start=datetime(2026, 1, 15, 7, 0, tzinfo=UTC),
    )  # fmt: skip
    # The customer store loaded through TLS, as the ACL user.
    secured_redis = redis_client(settings.redis_url, settings.redis_options())
    segment_of = load_simulated_customers(secured_redis, settings.redis_prefix, tmp_path, config)
    messages = list(generate(config))
    with KafkaWriter(settings.kafka_config(), settings.events_topics[0]) as writer:
        for message in messages:
            writer.write(message)

    result = run_job(settings, "kafka", tmp_path / "recovery")

    output = result.stdout + result.stderr
    assert PASSWORD not in output
    assert terminator.handshakes > 0  # the job's Redis traffic went through TLS
    valid = expected_from([m.value for m in messages]).valid_unique
    dump = redis_dump(services.redis, plain.redis_prefix)
    assert int(dump[f"{plain.redis_prefix}:pipeline"]["valid"]) == len(valid)
    expected_figures = figures(valid, segment_of, plain.redis_prefix)
    assert_journeys_exact(dump, expected_figures, plain.redis_prefix)
    assert_minute_series_complete(dump, plain.redis_prefix)

    customers = {row["customer_id"]: row for row in sample_rows(config)}
    expected = expected_offers(
        list(valid.values()), customers, SPECS, holdout_share=0.05, global_daily_cap=3,
        timezone="Europe/Warsaw",
    )  # fmt: skip
    assert expected.sent, "the morning triggers no offer: the test would prove nothing"
    offers = [msgspec.json.decode(v) for v in topic_values(settings, settings.offers_topic)]
    assert {o["offer_id"] for o in offers} == set(expected.sent)
    assert all(o["phone"] == customers[o["customer_id"]]["phone"] for o in offers)


def _refused(settings: Settings, tmp_path: Path) -> str:
    """Run the job with ``settings``; it must stop by itself with status 1. Its output."""
    result = subprocess.run(
        job_command("kafka", tmp_path / "recovery"),
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_a_wrong_kafka_password_stops_the_job_with_the_reason(
    services: Services, terminator: TlsTerminator, tmp_path: Path
) -> None:
    wrong = "not-the-password"
    settings = _secured(
        services.settings, terminator.port, "SCRAM-SHA-512", kafka_sasl_password=SecretStr(wrong)
    )
    output = _refused(settings, tmp_path)
    assert "SASL authentication error" in output, output[-3000:]
    assert wrong not in output


def test_an_untrusted_kafka_certificate_stops_the_job_with_the_reason(
    services: Services, terminator: TlsTerminator, tmp_path: Path
) -> None:
    settings = _secured(services.settings, terminator.port, "SCRAM-SHA-512")
    settings = settings.model_copy(update={"kafka_ssl_ca_location": None})
    output = _refused(settings, tmp_path)
    assert "certificate verify failed" in output, output[-3000:]


def test_a_wrong_redis_password_stops_the_job_with_the_reason(
    services: Services, terminator: TlsTerminator, tmp_path: Path
) -> None:
    settings = _secured(services.settings, terminator.port, "SCRAM-SHA-512")
    wrong_url = f"rediss://{USER}:not-the-password@localhost:{terminator.port}/0"
    output = _refused(settings.model_copy(update={"redis_url": wrong_url}), tmp_path)
    assert "Redis at localhost" in output and "refused the job" in output, output[-3000:]
    assert "not-the-password" not in output


def test_an_untrusted_redis_certificate_stops_the_job_with_the_reason(
    services: Services, terminator: TlsTerminator, tmp_path: Path
) -> None:
    settings = _secured(services.settings, terminator.port, "SCRAM-SHA-512")
    output = _refused(settings.model_copy(update={"redis_ssl_ca_certs": None}), tmp_path)
    assert "TLS certificate not trusted" in output, output[-3000:]
