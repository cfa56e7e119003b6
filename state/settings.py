"""The job's configuration: one frozen object read once at start from ``CLICKSTREAM_*``.

Every value is validated here, so a bad deployment fails at start with a message naming the
setting instead of somewhere in the middle of the stream.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as EnvParseError

from state.funnels import DEFAULT_FUNNELS, Funnel, FunnelStep


class Settings(BaseSettings):
    """Configuration of the job and its tools. Environment variables use the prefix CLICKSTREAM_."""

    model_config = SettingsConfigDict(
        env_prefix="CLICKSTREAM_", frozen=True, extra="forbid", env_file=None
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", min_length=1, description="Comma-separated host:port list."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client connects: SASL_SSL for SASL over TLS."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (with a SASL_* protocol)."
    )
    kafka_sasl_username: str = Field("", description="SASL user (with a SASL_* protocol).")
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""), description="SASL password: from the environment or the secrets folder."
    )
    kafka_ssl_ca_location: Path | None = Field(
        None, description="PEM file of the CA that signed the brokers' certificates (TLS)."
    )
    kafka_ssl_certificate_location: Path | None = Field(
        None, description="PEM client certificate, for brokers that require mutual TLS."
    )
    kafka_ssl_key_location: Path | None = Field(
        None, description="PEM private key of the client certificate (mutual TLS)."
    )
    kafka_ssl_verify_hostname: bool = Field(
        True, description="Check that a broker's certificate names the host connected to."
    )
    events_topics: Annotated[tuple[str, ...], NoDecode] = Field(
        ("bank.events",), min_length=1, description="Topics the job reads events from."
    )
    dlq_suffix: str = Field(".dlq", min_length=1, description="Dead letters go to <topic><suffix>.")
    file_dlq_topic: str = Field(
        "bank.events.file-replay.dlq", min_length=1, description="Dead letters of a file replay."
    )
    consumer_group: str = Field(
        "bank-clickstream", min_length=1, description="Kafka consumer group id (metrics only)."
    )
    kafka_batch_size: int = Field(
        20_000,
        ge=1,
        le=1_000_000,
        description="Most messages taken per partition per poll. Only a backlog fills a poll (a "
        "caught-up job gets what arrived in 10 ms), so this sets catch-up speed, not latency.",
    )
    kafka_create_topics: bool = Field(
        True, description="Create missing event and dead-letter topics at start."
    )
    kafka_topic_partitions: int = Field(4, ge=1, le=10_000)

    redis_url: str = Field("redis://127.0.0.1:6379/0", pattern=r"^(redis|rediss|unix)://")
    redis_ssl_ca_certs: Path | None = Field(
        None,
        description="PEM file of the CA that signed Redis's certificate, for rediss:// URLs "
        "(the system's CAs when unset).",
    )
    redis_prefix: str = Field("cs", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")

    s3_endpoint_url: str | None = Field("http://127.0.0.1:5000")
    s3_bucket: str = Field("bank-clickstream", min_length=3)
    s3_prefix: str = Field("archive", description="Key prefix of the archive inside the bucket.")
    s3_access_key_id: SecretStr = SecretStr("testing")
    s3_secret_access_key: SecretStr = SecretStr("testing")
    s3_region: str | None = None

    trino_url: str = Field(
        "http://127.0.0.1:18080", pattern=r"^https?://", description="Trino (or Presto) server."
    )
    trino_catalog: str = Field("hive", min_length=1)
    trino_schema: str = Field("clickstream", pattern=r"^[a-z_][a-z0-9_]*$")

    recovery_dir: Path | None = Field(None, description="Bytewax recovery store; off when unset.")
    epoch_interval_s: float = Field(10.0, gt=0, le=600)
    outage_limit_s: float = Field(
        600.0,
        gt=0,
        description="How long Redis or S3 may be unreachable while the job waits (holding the "
        "stream) before it stops with status 1.",
    )
    stop_grace_s: float = Field(
        60.0,
        gt=0,
        description="After SIGTERM, SIGINT or SIGHUP, how long the job may take to save its last "
        "epoch and exit 0 before it exits at once with status 1.",
    )
    shard_count: int = Field(
        128, ge=1, le=4096, description="Fixed for the life of a recovery store."
    )
    max_event_bytes: int = Field(16_384, ge=256, le=10_000_000)
    allowed_lateness_s: int = Field(300, ge=0)
    dedupe_window_s: int = Field(
        3600, ge=1, description="Event-time span within which a repeated event_id is dropped."
    )
    dedupe_max_ids_per_shard: int = Field(200_000, ge=1000)
    archive_chunk_rows: int = Field(50_000, ge=1, description="Rows per Parquet object.")
    archive_max_age_s: float = Field(
        30.0, gt=0, description="An open Parquet object is written at least this often."
    )
    archive_table_parts: int = Field(
        1,
        ge=1,
        le=64,
        description="Objects per hour of the sessions and offers tables (raise it when an "
        "hour's object passes a few hundred MB). Fixed for the life of a recovery store.",
    )
    session_gap_s: int = Field(1800, ge=60, description="Inactivity that ends a session.")
    stitch_allowance_s: int = Field(
        900,
        ge=0,
        description="Extra wait before a session closes, for anonymous starts still being "
        "stitched to a login.",
    )
    device_idle_s: int = Field(
        86_400, ge=3600, description="A device idle this long (event time) is forgotten."
    )
    partition_idle_s: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="An input partition read to its end and quiet this long (wall clock, seconds) "
        "no longer holds the watermark back, until it delivers events again.",
    )
    alignment_max_drift_s: int = Field(
        21_600,
        ge=0,
        description="An input partition read this far (event time, seconds) ahead of the low "
        "watermark pauses until the others catch up, bounding the state a backlog holds; 0 "
        "turns alignment off.",
    )
    funnels: str = Field(
        "",
        description="Extra funnels: 'name=step,step,...@window_s;...' with steps "
        "'screen:<screen>' or 'event:<event_type>'.",
    )
    figure_retention_days: int = Field(35, ge=1, description="Days of figures kept in state.")
    figure_expire_s: int = Field(40 * 86_400, ge=3600, description="TTL of daily Redis keys.")
    minute_retention_s: int = Field(
        2 * 24 * 3600, ge=60, description="How long per-minute Redis hashes live."
    )

    campaigns_dir: Path | None = Field(
        None, description="Folder of campaign files; offers are off when unset."
    )
    campaigns_reload_s: float = Field(
        5.0, gt=0, le=3600, description="How often changed campaign files are picked up."
    )
    offers_topic: str = Field("offers", min_length=1, description="One message per offer to send.")
    offer_decisions_topic: str = Field(
        "offer-decisions", min_length=1, description="Every match with its outcome (audit)."
    )
    bank_timezone: str = Field(
        "Europe/Warsaw", description="The bank's calendar for offer caps and quiet hours."
    )
    offers_quiet_hours: str = Field(
        "21:00-08:00",
        pattern=r"^(|[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9])$",
        description="Local 'HH:MM-HH:MM' when no offer goes out (held until the end); '' for none.",
    )
    offers_max_per_event: int = Field(1, ge=1, le=20, description="Offers one event can trigger.")
    offers_daily_cap: int = Field(
        3, ge=1, description="Offers per customer per calendar day over all campaigns."
    )
    offers_holdout_share: float = Field(
        0.02, ge=0, lt=1, description="Share of customers held out of every campaign."
    )
    offers_history_events: int = Field(
        20, ge=0, le=1000, description="Recent events per customer kept for the rules."
    )
    offers_history_s: int = Field(
        6 * 3600, ge=0, description="How far back the rules see a customer's events."
    )
    offers_max_trigger_age_s: int = Field(
        3600,
        ge=0,
        description="Triggers older than this (wall clock) are expired, so that a back-fill "
        "never texts anyone; 0 turns it off.",
    )
    offers_rule_timeout_ms: int = Field(100, ge=1, le=60_000, description="Budget of one rule.")
    offers_release_grace_s: float = Field(
        2.0, ge=0, description="How long a due offer waits for quiet input before the wall clock."
    )
    customer_cache_size: int = Field(
        200_000, ge=1000, description="Customer profiles cached per worker."
    )

    api_port: int = Field(3030, ge=1, le=65535, description="Bytewax API and metrics port.")
    health_port: int = Field(
        3130,
        ge=0,
        le=65535,
        description="Port of /live and /ready (plus the process id in a cluster); 0 turns it off.",
    )
    ports_per_process: bool = Field(
        True,
        description="Add the process id to the API and health ports, for several processes on "
        "one host; false where every process has its own address (Kubernetes pods).",
    )

    @field_validator("events_topics", mode="before")
    @classmethod
    def _split_topics(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @field_validator("funnels")
    @classmethod
    def _check_funnels(cls, value: str) -> str:
        _parse_funnels(value)
        return value

    @field_validator("bank_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {value!r} (an IANA name such as 'Europe/Warsaw')"
            raise ValueError(msg) from None
        return value

    @field_validator("offers_quiet_hours")
    @classmethod
    def _check_quiet_hours(cls, value: str) -> str:
        for part in filter(None, value.split("-")):
            if int(part[:2]) > 23:
                raise ValueError(f"{part!r} is not a time of day (00:00-23:59)")
        return value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            msg = (
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "CLICKSTREAM_KAFKA_SASL_USERNAME and CLICKSTREAM_KAFKA_SASL_PASSWORD"
            )
            raise ValueError(msg)
        for name in (
            "kafka_ssl_ca_location",
            "kafka_ssl_certificate_location",
            "kafka_ssl_key_location",
            "redis_ssl_ca_certs",
        ):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                msg = f"CLICKSTREAM_{name.upper()}: no file at {path}"
                raise ValueError(msg)
        return self

    def quiet_hours(self) -> tuple[int, int] | None:
        """The quiet hours as (start, end) minutes of the bank's day, or None."""
        if not self.offers_quiet_hours:
            return None
        start, end = (
            int(part[:2]) * 60 + int(part[3:]) for part in self.offers_quiet_hours.split("-")
        )
        return (start, end) if start != end else None

    def funnel_definitions(self) -> tuple[Funnel, ...]:
        """The shipped funnels plus the configured ones."""
        return DEFAULT_FUNNELS + _parse_funnels(self.funnels)

    @property
    def kafka_brokers(self) -> list[str]:
        """The bootstrap servers as a list."""
        return [b.strip() for b in self.kafka_bootstrap_servers.split(",") if b.strip()]

    def kafka_config(self) -> dict[str, str]:
        """Librdkafka settings every Kafka client of the job starts from: the brokers, and how
        to authenticate and encrypt (SASL, TLS).
        """
        config = {
            "bootstrap.servers": ",".join(self.kafka_brokers),
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL_"):
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
            config["sasl.username"] = self.kafka_sasl_username
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            files = {
                "ssl.ca.location": self.kafka_ssl_ca_location,
                "ssl.certificate.location": self.kafka_ssl_certificate_location,
                "ssl.key.location": self.kafka_ssl_key_location,
            }
            config.update({key: str(path) for key, path in files.items() if path is not None})
            config["ssl.endpoint.identification.algorithm"] = (
                "https" if self.kafka_ssl_verify_hostname else "none"
            )
        return config

    def redis_options(self) -> dict[str, Any]:
        """redis-py connection options beside the URL (the CA for a ``rediss://`` URL)."""
        if self.redis_ssl_ca_certs is None or not self.redis_url.startswith("rediss://"):
            return {}
        return {"ssl_ca_certs": str(self.redis_ssl_ca_certs)}

    def dlq_topic_for(self, source: str) -> str:
        """The dead-letter topic for a message read from ``source`` (a topic or ``file:PATH``)."""
        if source.startswith("file:"):
            return self.file_dlq_topic
        return f"{source}{self.dlq_suffix}"

    def as_environment(self) -> dict[str, str]:
        """These settings as ``CLICKSTREAM_*`` variables, to start another process with them."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, SecretStr):
                text = value.get_secret_value()
            else:
                text = str(value)
            env[f"CLICKSTREAM_{name.upper()}"] = text
        return env

    def masked(self) -> dict[str, str]:
        """The settings as ``CLICKSTREAM_*`` variables for people to read: secrets and the
        passwords in URLs masked.
        """
        shown: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                text = "**********" if value.get_secret_value() else ""
            elif isinstance(value, str):
                text = _mask_password(value)
            else:
                text = str(value)
            shown[f"CLICKSTREAM_{name.upper()}"] = text
        return shown

    def storage_options(self) -> dict[str, object]:
        """s3fs options for the archive bucket."""
        client_kwargs: dict[str, object] = {}
        if self.s3_endpoint_url:
            client_kwargs["endpoint_url"] = self.s3_endpoint_url
        if self.s3_region:
            client_kwargs["region_name"] = self.s3_region
        return {
            "key": self.s3_access_key_id.get_secret_value(),
            "secret": self.s3_secret_access_key.get_secret_value(),
            "client_kwargs": client_kwargs,
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        }


def _mask_password(text: str) -> str:
    """A URL with its password (``scheme://user:password@host``) masked; other text as is."""
    parts = urlsplit(text)
    if not parts.scheme or parts.password is None:
        return text
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:**********@{host}{port}"))


def _parse_funnels(text: str) -> tuple[Funnel, ...]:
    funnels = []
    for spec in filter(None, (part.strip() for part in text.split(";"))):
        name, _, rest = spec.partition("=")
        steps, _, window = rest.partition("@")
        if not name or not steps or not window.isdigit():
            msg = f"funnel {spec!r} must look like 'name=screen:a,event:b@1800'"
            raise ValueError(msg)
        parsed = tuple(FunnelStep.parse(step.strip()) for step in steps.split(","))
        funnels.append(Funnel(name.strip(), parsed, int(window) * 1000))
    return tuple(funnels)


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting and its environment variable."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, with explicit overrides taking precedence.

    Raises:
        SettingsError: naming each bad setting and what is wrong with it.
    """
    secrets_dir = os.environ.get("CLICKSTREAM_SECRETS_DIR")
    try:
        if secrets_dir:
            # One file per secret, named as its variable (a mounted Kubernetes Secret).
            return Settings(_secrets_dir=secrets_dir, **overrides)  # type: ignore[arg-type,call-arg]
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            if not name:  # a rule over several settings names them in its message
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            env = f"CLICKSTREAM_{name.split('.')[0].upper()}"
            problems.append(f"{name} ({env}): {error['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None
    except EnvParseError as exc:
        raise SettingsError(f"invalid configuration: {exc}") from None
