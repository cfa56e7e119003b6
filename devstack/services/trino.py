"""Trino 476 (the newest on Maven Central) with its Hive connector over the local S3 server.

Trino needs a JDK 24+: the stack looks for one under /usr/lib/jvm (the Temurin 25 JDK here),
or takes ``TRINO_JAVA_HOME``. The server tarball is fetched once with Maven into ``.stack/``;
only the plugins the archive needs are kept, which makes the start take seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from devstack import java, procs
from devstack.base import Service
from devstack.errors import StackError

VERSION = "476"
KEEP_PLUGINS = ("hive", "exchange-filesystem")
JDK_HINT = (
    "Trino 476 needs a JDK 24 or newer: install one under /usr/lib/jvm (e.g. the Temurin 25 "
    "JDK) or point TRINO_JAVA_HOME at it"
)


def find_jdk(minimum: int = 24) -> Path:
    """A JDK home with ``bin/java`` of at least ``minimum``.

    Raises:
        StackError: When there is none.
    """
    candidates = []
    configured = os.environ.get("TRINO_JAVA_HOME")
    if configured:
        candidates.append(Path(configured))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted((p for p in jvm.iterdir() if p.is_dir()), reverse=True)
    for home in candidates:
        binary = home / "bin" / "java"
        if binary.is_file():
            version = java.java_version(binary)
            if version is not None and version >= minimum:
                return home
    raise StackError(JDK_HINT)


class Trino(Service):
    """A single Trino coordinator that also runs the queries."""

    name = "trino"
    title = "Trino"
    ready_timeout_s = 180.0
    stop_timeout_s = 30.0

    @property
    def host(self) -> str:
        """The server's host."""
        return urlsplit(self.settings.trino_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """The server's HTTP port."""
        return urlsplit(self.settings.trino_url).port or 8080

    @property
    def endpoint(self) -> str:
        """The server's URL."""
        return self.settings.trino_url

    @property
    def server(self) -> Path:
        """The unpacked server."""
        return self.paths.home(self.name) / f"trino-server-{VERSION}"

    @property
    def etc(self) -> Path:
        """The generated configuration."""
        return self.paths.home(self.name) / "etc"

    def check_prerequisites(self) -> None:
        """A JDK 24+, and Maven when the server is not unpacked yet.

        Raises:
            StackError: Naming what is missing.
        """
        find_jdk()
        if not (self.server / "bin" / "launcher").is_file():
            java.require_maven("the Trino server")

    def prepare(self) -> None:
        """Fetch and unpack the server (first start), then write its configuration.

        Raises:
            StackError: When Maven fails.
        """
        if not (self.server / "bin" / "launcher").is_file():
            self._fetch()
        self._configure()

    def _fetch(self) -> None:
        self.report(f"fetching Trino {VERSION} with Maven (first start only, ~800 MB) ...")
        began = time.monotonic()
        download = self.paths.home(self.name) / "download"
        download.mkdir(parents=True, exist_ok=True)
        log = self.paths.log("maven")
        command = [
            str(java.require_maven("the Trino server")), "-B", "-q",
            f"-Dmaven.repo.local={self.paths.home('m2')}", "dependency:copy",
            f"-Dartifact=io.trino:trino-server:{VERSION}:tar.gz",
            f"-DoutputDirectory={download}",
        ]  # fmt: skip
        returncode, offset = procs.run_logged(command, log, timeout=1800, cwd=download)
        archive = download / f"trino-server-{VERSION}.tar.gz"
        if returncode != 0 or not archive.is_file():
            raise StackError(
                f"Maven failed fetching Trino {VERSION}.\nLast lines of {log}:\n"
                f"{procs.tail(log, 30, offset) or '(empty)'}"
            )
        partial = self.paths.home(self.name) / "unpacking"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="tar")
        unpacked = partial / f"trino-server-{VERSION}"
        for plugin in (unpacked / "plugin").iterdir():
            if plugin.name not in KEEP_PLUGINS:
                shutil.rmtree(plugin)
        shutil.rmtree(self.server, ignore_errors=True)
        unpacked.replace(self.server)
        shutil.rmtree(partial, ignore_errors=True)
        archive.unlink()
        self.report(f"fetched Trino in {time.monotonic() - began:.1f} s")

    def _configure(self) -> None:
        settings = self.settings
        (self.etc / "catalog").mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.etc / "node.properties").write_text(
            f"node.environment=local\nnode.id=bank-clickstream-local\n"
            f"node.data-dir={self.data_dir}\n"
        )
        (self.etc / "jvm.config").write_text(
            "-server\n-Xmx2G\n-XX:+UseG1GC\n-XX:+ExitOnOutOfMemoryError\n"
            "-Djdk.attach.allowAttachSelf=true\n"
        )
        (self.etc / "config.properties").write_text(
            "coordinator=true\nnode-scheduler.include-coordinator=true\n"
            f"http-server.http.port={self.port}\ndiscovery.uri=http://{self.host}:{self.port}\n"
            "query.max-memory=1GB\nquery.max-memory-per-node=512MB\n"
        )
        (self.etc / "log.properties").write_text("io.trino=INFO\n")
        (self.etc / "catalog" / f"{settings.trino_catalog}.properties").write_text(
            "connector.name=hive\n"
            "hive.metastore=file\n"
            f"hive.metastore.catalog.dir=s3://{settings.s3_bucket}/trino-metastore\n"
            "hive.non-managed-table-writes-enabled=true\n"
            "fs.native-s3.enabled=true\n"
            f"s3.endpoint={settings.s3_endpoint_url}\n"
            f"s3.region={settings.s3_region or 'us-east-1'}\n"
            "s3.path-style-access=true\n"
            f"s3.aws-access-key={settings.s3_access_key_id.get_secret_value()}\n"
            f"s3.aws-secret-key={settings.s3_secret_access_key.get_secret_value()}\n"
        )

    def command(self) -> list[str]:
        """``bin/launcher run`` with the generated configuration."""
        return [
            str(self.server / "bin" / "launcher"),
            "run",
            f"--etc-dir={self.etc}",
            f"--data-dir={self.data_dir}",
        ]

    def environment(self) -> dict[str, str] | None:
        """The JDK 24+ first on PATH and as JAVA_HOME (the launcher needs Python 3 too)."""
        home = find_jdk()
        env = dict(os.environ)
        env["JAVA_HOME"] = str(home)
        env["PATH"] = f"{home / 'bin'}:{env.get('PATH', '')}"
        return env

    def probe(self, timeout: float) -> None:
        """``GET /v1/info`` must say the server is no longer starting.

        Raises:
            RuntimeError: While it is starting.
            OSError: When it does not answer.
        """
        with urllib.request.urlopen(f"{self.settings.trino_url}/v1/info", timeout=timeout) as r:
            info = json.loads(r.read())
        if info.get("starting", True):
            raise RuntimeError("Trino is still starting")
