"""The Helm chart (helm/bank-clickstream) rendered by the pinned helm: the Bytewax cluster it
describes, its hardening, the Secrets it reads (never holds), and the values it refuses.

helm comes from scripts/helm-tools.sh (built once with `go install`, cached in .stack/tools);
under CI=true a helm that cannot be had fails the run, elsewhere it skips with the reason.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from flows import runner
from flows.cli import app
from flows.runner import listen_ports
from state.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "bank-clickstream"
CI_VALUES = sorted(CHART.glob("ci/*-values.yaml"))
RELEASE = "rel"
FULLNAME = "rel-bank-clickstream"
# The settings that are secrets: only ever files in CLICKSTREAM_SECRETS_DIR.
SECRET_SETTINGS = {
    "CLICKSTREAM_KAFKA_SASL_USERNAME",
    "CLICKSTREAM_KAFKA_SASL_PASSWORD",
    "CLICKSTREAM_S3_ACCESS_KEY_ID",
    "CLICKSTREAM_S3_SECRET_ACCESS_KEY",
}

# What the default values render: the job, its two Services, the PDB, the recovery claim, the
# init script's ConfigMap, the service account, the Trino DDL hook Job and the sync CronJob.
DEFAULT_KINDS = (
    "StatefulSet",
    "Service",
    "Service",
    "PodDisruptionBudget",
    "PersistentVolumeClaim",
    "ServiceAccount",
    "Job",
    "CronJob",
)

Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm binary."""
    try:
        built = subprocess.run(
            ["bash", "scripts/helm-tools.sh"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        detail = error.stderr if isinstance(error.stderr, str) else str(error)
        message = f"helm could not be built by scripts/helm-tools.sh: {detail}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return Path(built.stdout.strip()) / "helm"


def helm_template(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart as release ``rel`` in namespace ``bank``."""
    command = [str(helm), "template", RELEASE, str(CHART), "--namespace", "bank", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def render(helm: Path, *args: str) -> list[Manifest]:
    """The manifests the chart renders with these ``-f``/``--set`` arguments."""
    done = helm_template(helm, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def values_args(values: Path | None) -> list[str]:
    return ["-f", str(values)] if values else []


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The only manifest of this kind (and name)."""
    found = [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """Every pod template: the StatefulSet's, the Jobs' and the CronJobs'."""
    for m in manifests:
        if m["kind"] in ("StatefulSet", "Job"):
            yield m["metadata"]["name"], m["spec"]["template"]
        elif m["kind"] == "CronJob":
            yield m["metadata"]["name"], m["spec"]["jobTemplate"]["spec"]["template"]


def containers(pod: Manifest) -> list[Manifest]:
    return [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]


def env_of(container: Manifest) -> dict[str, str]:
    """A container's plain environment variables (the chart uses no valueFrom)."""
    assert all("valueFrom" not in e for e in container.get("env", [])), "secrets are files"
    return {e["name"]: e["value"] for e in container.get("env", [])}


def job_container(manifests: list[Manifest]) -> Manifest:
    (container,) = one(manifests, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def volume(pod: Manifest, name: str) -> Manifest:
    (found,) = [v for v in pod["spec"]["volumes"] if v["name"] == name]
    assert isinstance(found, dict)
    return found


def mount(container: Manifest, name: str) -> Manifest:
    (found,) = [m for m in container["volumeMounts"] if m["name"] == name]
    assert isinstance(found, dict)
    return found


def secret_files(pod: Manifest) -> dict[str, tuple[str, str]]:
    """CLICKSTREAM_SECRETS_DIR's files: file name → (Secret, key)."""
    files = {}
    for source in volume(pod, "secrets")["projected"]["sources"]:
        for item in source["secret"]["items"]:
            files[item["path"]] = (source["secret"]["name"], item["key"])
    return files


def file_source(pod: Manifest, container: Manifest, path: str) -> tuple[str, str, str]:
    """Which volume gives the file at ``path`` in ``container``: (kind, name, key)."""
    for m in container["volumeMounts"]:
        if path.startswith(m["mountPath"] + "/"):
            source = volume(pod, m["name"])
            relative = path.removeprefix(m["mountPath"] + "/")
            for kind, ref in (("secret", "secretName"), ("configMap", "name")):
                if kind in source:
                    (key,) = [i["key"] for i in source[kind]["items"] if i["path"] == relative]
                    return kind, source[kind][ref], key
    raise AssertionError(f"no volume gives {path}")


def start_pod(container: Manifest, ordinal: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Start the job container as pod ``ordinal`` would: its args with ``$(VAR)`` filled in from
    its environment as Kubernetes does, through the real CLI and settings, with the pod's host
    name; what the job (``run_job``, recorded instead of run) is started with."""
    assert "command" not in container  # the image's entrypoint: clickstream
    env = env_of(container)
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in container["args"]]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLICKSTREAM_SECRETS_DIR", raising=False)
    monkeypatch.setattr(socket, "gethostname", lambda: f"{FULLNAME}-{ordinal}")
    started: dict[str, Any] = {}

    def record(settings: Settings, source: str, **options: Any) -> None:
        started.update(options, settings=settings, source=source)

    monkeypatch.setattr(runner, "run_job", record)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return started


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_the_default_values_render_the_job_its_services_and_its_jobs(helm: Path) -> None:
    manifests = render(helm)
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == sorted(DEFAULT_KINDS)
    statefulset = one(manifests, "StatefulSet", FULLNAME)
    assert statefulset["spec"]["replicas"] == 1
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    headless = one(manifests, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    selector = statefulset["spec"]["selector"]["matchLabels"]
    for service in (m for m in manifests if m["kind"] == "Service"):
        assert service["spec"]["selector"] == selector
    assert selector.items() <= pod_labels.items()
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert pdb["spec"]["maxUnavailable"] == 1
    # The Services select the stream job's pods only, never a Job's.
    for name, pod in pod_specs(manifests):
        if name != FULLNAME:
            assert not selector.items() <= pod["metadata"]["labels"].items()


@pytest.mark.parametrize("replicas", [1, 4])
def test_the_process_addresses_match_the_replica_count(
    helm: Path, replicas: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(helm, "--set", f"replicas={replicas}", "--set", "workers=3")
    statefulset = one(manifests, "StatefulSet")
    assert statefulset["spec"]["replicas"] == replicas
    container = job_container(manifests)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    headless = one(manifests, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["ports"][0]["port"] == ports["cluster"]
    expected = [
        f"{FULLNAME}-{i}.{headless['metadata']['name']}:{ports['cluster']}" for i in range(replicas)
    ]
    for ordinal in range(replicas):
        started = start_pod(container, ordinal, monkeypatch)
        assert started["source"] == "kafka"
        assert started["workers"] == 3
        if replicas == 1:
            # One process: no cluster to join.
            assert started["addresses"] is None
        else:
            assert started["process_id"] == ordinal
            assert started["addresses"] == expected
        # Every pod listens on the container ports the probes and the metrics Service use.
        api_port, health_port = listen_ports(started["settings"], started["process_id"])
        assert (api_port, health_port) == (ports["metrics"], ports["health"])


def test_the_probes_ask_the_jobs_health_endpoint(helm: Path) -> None:
    container = job_container(render(helm))
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "health"}
    assert container["startupProbe"]["httpGet"] == {"path": "/live", "port": "health"}
    assert container["startupProbe"]["failureThreshold"] * 5 == 300


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.stem if v else "default")
def test_every_pod_is_hardened(helm: Path, values: Path | None) -> None:
    for name, pod in pod_specs(render(helm, *values_args(values))):
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        tmp = volume(pod, "tmp")
        assert "emptyDir" in tmp, name
        for container in containers(pod):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert mount(container, "tmp")["mountPath"] == "/tmp", name
            assert container["resources"]["limits"]["memory"], name


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.stem if v else "default")
def test_no_secret_is_in_the_manifests(helm: Path, values: Path | None) -> None:
    manifests = render(helm, *values_args(values))
    assert not [m for m in manifests if m["kind"] == "Secret"]
    for name, pod in pod_specs(manifests):
        files = secret_files(pod)
        assert {"CLICKSTREAM_S3_ACCESS_KEY_ID", "CLICKSTREAM_S3_SECRET_ACCESS_KEY"} <= set(files)
        for container in containers(pod):
            env = env_of(container)
            assert not SECRET_SETTINGS & set(env), name
            # A URL in the environment would win over the Secret's file: only a password-less
            # one is ever there.
            if "CLICKSTREAM_REDIS_URL" in files:
                assert "CLICKSTREAM_REDIS_URL" not in env, name
            elif "CLICKSTREAM_REDIS_URL" in env:
                assert "@" not in env["CLICKSTREAM_REDIS_URL"], name
            secrets_dir = env.get("CLICKSTREAM_SECRETS_DIR")
            if secrets_dir is not None:
                assert mount(container, "secrets") == {
                    "name": "secrets",
                    "mountPath": secrets_dir,
                    "readOnly": True,
                }


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.stem if v else "default")
def test_every_setting_the_chart_passes_is_a_setting_of_the_job(
    helm: Path, values: Path | None
) -> None:
    known = {f"CLICKSTREAM_{name.upper()}" for name in Settings.model_fields}
    known.add("CLICKSTREAM_SECRETS_DIR")  # read by load_settings itself
    for name, pod in pod_specs(render(helm, *values_args(values))):
        for container in containers(pod):
            passed = {n for n in env_of(container) if n.startswith("CLICKSTREAM_")}
            assert passed <= known, (name, passed - known)
        assert set(secret_files(pod)) <= known, name


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.stem if v else "default")
def test_the_job_accepts_the_configuration_the_chart_gives_it(
    helm: Path, values: Path | None, tmp_path: Path
) -> None:
    """`clickstream settings` with the StatefulSet's environment, its Secrets and certificates
    as files (with stand-in contents): the job would start with this configuration."""
    manifests = render(helm, *values_args(values))
    pod = one(manifests, "StatefulSet")["spec"]["template"]
    container = job_container(manifests)
    env = env_of(container)
    for path_setting, path in list(env.items()):
        if path.startswith("/etc/clickstream/") and path_setting != "CLICKSTREAM_SECRETS_DIR":
            local = tmp_path / path.removeprefix("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text("-----BEGIN CERTIFICATE-----\n")
            env[path_setting] = str(local)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for file_name in secret_files(pod):
        stand_in = "rediss://job:pw@redis:6380/0" if file_name.endswith("REDIS_URL") else "x"
        (secrets / file_name).write_text(stand_in)
    env |= {"CLICKSTREAM_SECRETS_DIR": str(secrets), "CLICKSTREAM_HEALTH_PORT": "3130"}
    env |= {"CLICKSTREAM_API_PORT": "3030", "PATH": os.environ["PATH"]}
    if env.get("CLICKSTREAM_CAMPAIGNS_DIR"):
        env["CLICKSTREAM_CAMPAIGNS_DIR"] = str(ROOT / "campaigns")
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "clickstream"), "settings"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    lines = dict(line.split("=", 1) for line in shown.stdout.splitlines())
    for setting in ("CLICKSTREAM_KAFKA_SECURITY_PROTOCOL", "CLICKSTREAM_RECOVERY_DIR"):
        assert lines[setting] == env[setting]


def test_kafka_sasl_ssl_reads_every_credential_from_existing_secrets(helm: Path) -> None:
    manifests = render(helm, "-f", str(CHART / "ci" / "kafka-sasl-ssl-values.yaml"))
    for name, pod in pod_specs(manifests):
        files = secret_files(pod)
        assert files["CLICKSTREAM_KAFKA_SASL_USERNAME"] == ("clickstream-kafka-user", "user")
        assert files["CLICKSTREAM_KAFKA_SASL_PASSWORD"] == ("clickstream-kafka-user", "password")
        assert files["CLICKSTREAM_S3_SECRET_ACCESS_KEY"] == (
            "clickstream-s3",
            "AWS_SECRET_ACCESS_KEY",
        )
        for container in containers(pod):
            env = env_of(container)
            if "CLICKSTREAM_KAFKA_SECURITY_PROTOCOL" not in env:
                continue  # the recovery store's init container reads no settings
            assert env["CLICKSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
            assert env["CLICKSTREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
            ca = env["CLICKSTREAM_KAFKA_SSL_CA_LOCATION"]
            assert file_source(pod, container, ca) == ("secret", "kafka-cluster-ca-cert", "ca.crt")
            for setting, key in (("CERTIFICATE", "tls.crt"), ("KEY", "tls.key")):
                path = env[f"CLICKSTREAM_KAFKA_SSL_{setting}_LOCATION"]
                assert file_source(pod, container, path) == (
                    "secret",
                    "clickstream-kafka-client-tls",
                    key,
                )


def test_redis_tls_and_auth_come_from_a_secret_and_a_ca(helm: Path) -> None:
    manifests = render(helm, "-f", str(CHART / "ci" / "redis-tls-values.yaml"))
    for name, pod in pod_specs(manifests):
        assert secret_files(pod)["CLICKSTREAM_REDIS_URL"] == ("clickstream-redis", "url")
        for container in containers(pod):
            env = env_of(container)
            if "CLICKSTREAM_REDIS_PREFIX" not in env:
                continue
            assert env["CLICKSTREAM_REDIS_PREFIX"] == "bank", name
            ca = env["CLICKSTREAM_REDIS_SSL_CA_CERTS"]
            assert file_source(pod, container, ca) == ("configMap", "redis-ca", "ca.pem"), name
    assert not [m for m in manifests if "trino" in m["metadata"]["name"]]


def test_the_service_monitor_scrapes_every_process_through_the_metrics_service(
    helm: Path,
) -> None:
    manifests = render(helm, "-f", str(CHART / "ci" / "servicemonitor-values.yaml"))
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    services = [
        m
        for m in manifests
        if m["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= m["metadata"]["labels"].items()
    ]
    assert len(services) == 1
    (service,) = services
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    (port,) = service["spec"]["ports"]
    assert endpoint["port"] == port["name"]
    assert service["spec"]["publishNotReadyAddresses"] is True
    container_ports = {p["name"]: p["containerPort"] for p in job_container(manifests)["ports"]}
    assert container_ports[port["targetPort"]] == port["port"] == 3030
    assert not [m for m in render(helm) if m["kind"] == "ServiceMonitor"]


def test_campaigns_are_a_configmap_mounted_whole_so_that_updates_reach_the_job(
    helm: Path,
) -> None:
    manifests = render(helm, "-f", str(CHART / "ci" / "servicemonitor-values.yaml"))
    configmap = one(manifests, "ConfigMap", f"{FULLNAME}-campaigns")
    assert list(configmap["data"]) == ["branch_deposit_savings.py"]
    statefulset = one(manifests, "StatefulSet")
    pod = statefulset["spec"]["template"]
    container = job_container(manifests)
    campaigns = mount(container, "campaigns")
    # A subPath mount never sees a ConfigMap's update; the folder does.
    assert "subPath" not in campaigns
    assert campaigns["mountPath"] == env_of(container)["CLICKSTREAM_CAMPAIGNS_DIR"]
    assert volume(pod, "campaigns")["configMap"]["name"] == configmap["metadata"]["name"]
    # An update must not restart the pods either: no checksum of it on the pod template.
    annotations = pod["metadata"].get("annotations", {})
    assert not [a for a in annotations if "campaign" in a]

    existing = render(helm, "-f", str(CHART / "ci" / "redis-tls-values.yaml"))
    pod = one(existing, "StatefulSet")["spec"]["template"]
    assert volume(pod, "campaigns")["configMap"]["name"] == "marketing-campaigns"
    assert env_of(job_container(existing))["CLICKSTREAM_CAMPAIGNS_RELOAD_S"] == "10"
    assert not [m for m in existing if m["kind"] == "ConfigMap" and "campaigns" in str(m)]

    baked = render(helm, "--set", "campaigns.enabled=true")
    assert env_of(job_container(baked))["CLICKSTREAM_CAMPAIGNS_DIR"] == "/app/campaigns"
    assert "CLICKSTREAM_CAMPAIGNS_DIR" not in env_of(job_container(render(helm)))


def test_the_recovery_store_is_one_shared_claim_that_outlives_the_release(helm: Path) -> None:
    manifests = render(helm, "--set", "recovery.partitions=12", "--set", "replicas=3")
    claim = one(manifests, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    pod = one(manifests, "StatefulSet")["spec"]["template"]
    claim_name = claim["metadata"]["name"]
    assert volume(pod, "recovery")["persistentVolumeClaim"]["claimName"] == claim_name
    (init,) = pod["spec"]["initContainers"]
    assert "command" not in init  # the image's entrypoint: clickstream
    recovery, command, store, option_name, partitions = init["args"]
    assert (recovery, command) == ("recovery", "init")
    assert (option_name, partitions) == ("--partitions", "12")
    job = job_container(manifests)
    assert env_of(job)["CLICKSTREAM_RECOVERY_DIR"] == store
    volume_root = mount(init, "recovery")["mountPath"]
    assert store.startswith(volume_root + "/")
    assert mount(job, "recovery")["mountPath"] == volume_root

    existing = render(helm, "--set", "recovery.existingClaim=clickstream-recovery")
    assert not [m for m in existing if m["kind"] == "PersistentVolumeClaim"]
    pod = one(existing, "StatefulSet")["spec"]["template"]
    assert volume(pod, "recovery")["persistentVolumeClaim"]["claimName"] == "clickstream-recovery"


def test_the_customer_extract_is_loaded_from_a_claim_or_from_s3(helm: Path) -> None:
    from_claim = render(helm, "-f", str(CHART / "ci" / "servicemonitor-values.yaml"))
    cronjob = one(from_claim, "CronJob", f"{FULLNAME}-customers-load")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["customers", "load", "/extracts/core-banking/customers.csv"]
    assert mount(container, "extracts") == {
        "name": "extracts",
        "mountPath": "/extracts",
        "readOnly": True,
    }
    assert volume(pod, "extracts")["persistentVolumeClaim"]["claimName"] == "core-banking-extracts"

    from_s3 = render(helm, "-f", str(CHART / "ci" / "redis-tls-values.yaml"))
    cronjob = one(from_s3, "CronJob", f"{FULLNAME}-customers-load")
    assert cronjob["spec"]["timeZone"] == "Europe/Warsaw"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    (fetch,) = pod["spec"]["initContainers"]
    (container,) = pod["spec"]["containers"]
    source, local = fetch["command"][-2:]
    assert source == "s3://core-banking-exports/customers/latest.parquet"
    assert container["args"] == ["customers", "load", local]
    assert local.startswith(mount(container, "extract")["mountPath"] + "/")
    assert mount(fetch, "extract")["mountPath"] == mount(container, "extract")["mountPath"]


def test_the_trino_tables_are_made_after_every_install_and_upgrade(helm: Path) -> None:
    manifests = render(helm)
    job = one(manifests, "Job", f"{FULLNAME}-trino-ddl")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["trino", "ddl", "--apply"]
    assert "command" not in container  # the image's entrypoint: clickstream
    sync = one(manifests, "CronJob", f"{FULLNAME}-trino-sync")
    (container,) = sync["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["trino", "sync"]
    assert sync["spec"]["concurrencyPolicy"] == "Forbid"


def test_other_settings_pass_through_by_name(helm: Path) -> None:
    manifests = render(helm, "-f", str(CHART / "ci" / "replicas-4-values.yaml"))
    env = env_of(job_container(manifests))
    assert env["CLICKSTREAM_SHARD_COUNT"] == "256"
    assert env["CLICKSTREAM_PARTITION_IDLE_S"] == "45.5"
    # A large whole number stays one (values files give numbers as floats).
    assert env["CLICKSTREAM_FIGURE_EXPIRE_S"] == "3456000"


def test_the_schema_knows_the_settings_it_lets_through() -> None:
    """Every setting the values accept by name is one of state/settings.py, of the same type;
    the secrets and the settings the chart sets itself are refused."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    accepted = schema["properties"]["settings"]["properties"]
    types = {int: "integer", float: "number", str: "string", bool: "boolean"}
    for name, rule in accepted.items():
        field = Settings.model_fields[name]
        if "enum" in rule and len(rule["enum"]) == 1:  # refused, with its message
            assert f"CLICKSTREAM_{name.upper()}" in SECRET_SETTINGS | {"CLICKSTREAM_REDIS_URL"}
            continue
        assert rule["type"] == types[field.annotation], name  # type: ignore[index]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["replicas=0"], "at '/replicas': minimum: got 0, want 1"),
        (["workers=0"], "at '/workers': minimum: got 0, want 1"),
        (["kafka.securityProtocol=SASL"], "value must be one of 'PLAINTEXT', 'SSL'"),
        (["kafka.sasl.mechanism=SCRAM"], "value must be one of 'PLAIN', 'SCRAM-SHA-256'"),
        (["kafka.sasl.password=hunter2"], "never in values: the password is read from the Secret"),
        (["s3.secretAccessKey=hunter2"], "never in values: the key is read from the Secret"),
        (["redis.url=redis://app:hunter2@redis:6379/0"], "no password in redis.url"),
        (["settings.kafka_sasl_password=hunter2"], "never in values"),
        (["settings.no_such_setting=1"], "additional properties 'no_such_setting' not allowed"),
        (["settings.shard_count=many"], "at '/settings/shard_count': got string, want integer"),
        (["podSecurityContext.runAsUser=0"], "at '/podSecurityContext/runAsUser': minimum"),
        (["replicas=9"], "replicas (9) must not exceed recovery.partitions (8)"),
        (
            ["kafka.securityProtocol=SASL_SSL"],
            "kafka.securityProtocol SASL_SSL needs kafka.sasl.existingSecret",
        ),
        (["kafka.tls.ca.secret=ca"], "kafka.tls is set but kafka.securityProtocol is PLAINTEXT"),
        (["redis.tls.ca.secret=ca"], "redis.url is not a rediss:// URL"),
        (["customersLoad.enabled=true"], "customersLoad.enabled needs customersLoad.extract"),
        (["campaigns.existingConfigMap=c"], "campaigns.enabled is false"),
        (["ports.health=9950"], "ports.health (9950) is inside the cluster ports"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(
    helm: Path, arguments: list[str], message: str
) -> None:
    done = helm_template(helm, *(a for argument in arguments for a in ("--set", argument)))
    assert done.returncode != 0
    assert message in done.stderr
    # A password given in clear is refused without being repeated.
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.stem if v else "default")
def test_the_notes_name_every_secret_and_configmap_to_create_first(
    helm: Path, values: Path | None
) -> None:
    command = [str(helm), "install", RELEASE, str(CHART), "--dry-run=client", "-n", "bank"]
    done = subprocess.run(
        [*command, *values_args(values)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    manifests = render(helm, *values_args(values))
    chart_made = {m["metadata"]["name"] for m in manifests}
    needed: set[str] = set()
    for _, pod in pod_specs(manifests):
        for given in pod["spec"]["volumes"]:
            for source in given.get("projected", {}).get("sources", []):
                needed.add(source["secret"]["name"])
            if "secret" in given:
                needed.add(given["secret"]["secretName"])
            if "configMap" in given:
                needed.add(given["configMap"]["name"])
    for name in needed - chart_made:
        assert f"  {name} (" in notes, name


def test_the_operations_guide_names_what_the_chart_makes(helm: Path) -> None:
    """docs/operations.md's commands use release `rel`: every name, label selector and path they
    give is one the chart renders."""
    guide = (ROOT / "docs" / "operations.md").read_text()
    manifests = render(helm)
    names = {m["metadata"]["name"] for m in manifests}
    statefulset = one(manifests, "StatefulSet")
    pods = {f"{FULLNAME}-{i}" for i in (*range(4), "N")}  # N: any ordinal
    for name in set(re.findall(rf"{FULLNAME}[\w-]*", guide)):
        assert name in names | pods, name
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    for selector in set(re.findall(r"-l (\S+)", guide)):
        wanted = dict(pair.split("=") for pair in selector.split(","))
        assert wanted.items() <= labels.items(), selector
    # The maintenance pod mounts the store where the job does, and the store check's messages
    # point at a section that exists.
    volume_root = mount(job_container(manifests), "recovery")["mountPath"]
    assert f"mountPath: {volume_root}" in guide
    assert "## The recovery store" in guide
    store_check = (ROOT / "flows" / "recovery_store.py").read_text()
    assert "docs/operations.md, 'The recovery store'" in store_check
