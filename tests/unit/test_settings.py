"""Configuration: defaults, environment, and bad values that name the setting."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.runner import hostname_ordinal, listen_ports, wait_for_address
from state.settings import SettingsError, load_settings


def test_topics_and_numbers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKSTREAM_EVENTS_TOPICS", "app.events, core.events")
    monkeypatch.setenv("CLICKSTREAM_SHARD_COUNT", "64")
    settings = load_settings()
    assert settings.events_topics == ("app.events", "core.events")
    assert settings.shard_count == 64
    assert settings.dlq_topic_for("core.events") == "core.events.dlq"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("CLICKSTREAM_SHARD_COUNT", "zero", "shard_count (CLICKSTREAM_SHARD_COUNT)"),
        ("CLICKSTREAM_SHARD_COUNT", "0", "shard_count (CLICKSTREAM_SHARD_COUNT)"),
        ("CLICKSTREAM_REDIS_URL", "localhost:6379", "redis_url (CLICKSTREAM_REDIS_URL)"),
        ("CLICKSTREAM_KAFKA_BATCH_SIZE", "-5", "kafka_batch_size"),
        ("CLICKSTREAM_ARCHIVE_MAX_AGE_S", "0", "archive_max_age_s"),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=named.replace("(", r"\(").replace(")", r"\)")):
        load_settings()


def test_secrets_are_not_printed() -> None:
    settings = load_settings(s3_secret_access_key="hunter2")
    assert "hunter2" not in repr(settings)
    assert settings.storage_options()["secret"] == "hunter2"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.shard_count = 3


def test_clickstream_settings_masks_secrets_and_url_passwords() -> None:
    result = CliRunner().invoke(
        app,
        ["settings"],
        env={
            "CLICKSTREAM_S3_SECRET_ACCESS_KEY": "hunter2",
            "CLICKSTREAM_REDIS_URL": "redis://default:s3cret@redis.bank.internal:6380/0",
        },
    )
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "s3cret" not in result.output
    assert "CLICKSTREAM_REDIS_URL=redis://default:**********@redis.bank.internal:6380/0" in (
        result.output
    )
    assert "CLICKSTREAM_S3_SECRET_ACCESS_KEY=**********" in result.output


def test_secrets_come_from_mounted_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Kubernetes Secret mounted as files, one per variable, named as the variable."""
    (tmp_path / "CLICKSTREAM_S3_SECRET_ACCESS_KEY").write_text("from-the-secret")
    (tmp_path / "CLICKSTREAM_REDIS_URL").write_text("redis://:pw@redis.bank.internal:6379/0")
    monkeypatch.setenv("CLICKSTREAM_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("CLICKSTREAM_S3_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("CLICKSTREAM_REDIS_URL", raising=False)
    settings = load_settings()
    assert settings.s3_secret_access_key.get_secret_value() == "from-the-secret"
    assert settings.redis_url == "redis://:pw@redis.bank.internal:6379/0"


def test_kafka_sasl_over_tls_reaches_every_client_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("CLICKSTREAM_KAFKA_BOOTSTRAP_SERVERS", "b1:9094, b2:9094")
    monkeypatch.setenv("CLICKSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CLICKSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("CLICKSTREAM_KAFKA_SASL_USERNAME", "job")
    monkeypatch.setenv("CLICKSTREAM_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("CLICKSTREAM_KAFKA_SSL_CA_LOCATION", str(ca))
    settings = load_settings()
    assert settings.kafka_config() == {
        "bootstrap.servers": "b1:9094,b2:9094",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "job",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "https",
    }
    shown = settings.masked()
    assert shown["CLICKSTREAM_KAFKA_SASL_PASSWORD"] == "**********"
    assert "s3cret" not in "".join(shown.values())


def test_sasl_without_a_password_or_a_missing_ca_file_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLICKSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CLICKSTREAM_KAFKA_SASL_USERNAME", "job")
    with pytest.raises(SettingsError, match="needs CLICKSTREAM_KAFKA_SASL_USERNAME and CLICKSTRE"):
        load_settings()
    monkeypatch.setenv("CLICKSTREAM_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("CLICKSTREAM_REDIS_SSL_CA_CERTS", str(tmp_path / "absent.pem"))
    with pytest.raises(SettingsError, match="CLICKSTREAM_REDIS_SSL_CA_CERTS: no file at"):
        load_settings()


def test_plaintext_kafka_gets_no_security_settings() -> None:
    assert load_settings().kafka_config() == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_processes_on_one_host_add_their_id_to_the_ports_pods_do_not() -> None:
    on_one_host = load_settings(api_port=3030, health_port=3130)
    assert listen_ports(on_one_host, 2) == (3032, 3132)
    assert listen_ports(on_one_host, None) == (3030, 3130)
    in_pods = load_settings(api_port=3030, health_port=3130, ports_per_process=False)
    assert listen_ports(in_pods, 2) == (3030, 3130)
    assert listen_ports(load_settings(health_port=0), 3)[1] == 0  # no health endpoint


def test_a_pod_name_without_its_ordinal_stops_the_start_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert hostname_ordinal("rel-bank-clickstream-12") == 12
    monkeypatch.setattr(socket, "gethostname", lambda: "worker-a")
    result = CliRunner().invoke(app, ["run", "--process-id-from-hostname"])
    assert result.exit_code == 2
    assert "host name 'worker-a' does not end with -<process index>" in result.output
    both = ["run", "--process-id-from-hostname", "--process-id", "1"]
    assert "give --process-id or --process-id-from-hostname" in CliRunner().invoke(app, both).output


def test_a_cluster_process_whose_address_never_resolves_says_so() -> None:
    with pytest.raises(RuntimeError, match=r"address no-such-pod\.invalid does not resolve"):
        wait_for_address("no-such-pod.invalid:9900", 0.0)
    wait_for_address("127.0.0.1:9900", 0.0)  # resolves at once
