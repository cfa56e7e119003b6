"""S3: moto's S3 API server, holding its buckets in memory."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devstack.base import Service
from devstack.errors import StackError


def moto_server() -> Path:
    """The ``moto_server`` program of this Python environment (else the first on PATH).

    Returns:
        Its path.

    Raises:
        StackError: When moto's server is not installed.
    """
    beside = Path(sys.executable).parent / "moto_server"
    if beside.is_file():
        return beside
    found = shutil.which("moto_server")
    if found is None:
        raise StackError(
            "S3 needs moto's server: install moto[server] (make install puts it in .venv)."
        )
    return Path(found)


class S3(Service):
    """An S3 API server at ``s3_endpoint_url``; ``up`` also creates the ``s3_bucket``.

    Its buckets live in the server's memory: they are gone after ``down``, and ``up`` creates
    the settings' bucket again.
    """

    name = "s3"
    title = "S3"
    _client: Any = None

    @property
    def host(self) -> str:
        """The host of ``s3_endpoint_url`` (empty for AWS itself)."""
        url = self.settings.s3_endpoint_url
        return (urlsplit(url).hostname or "") if url else ""

    @property
    def port(self) -> int:
        """The port of ``s3_endpoint_url``."""
        url = self.settings.s3_endpoint_url
        if not url:
            return 443
        parts = urlsplit(url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def endpoint(self) -> str:
        """The endpoint URL."""
        return self.settings.s3_endpoint_url or "AWS S3"

    @property
    def local(self) -> bool:
        """Only a plain ``http://`` endpoint on this machine is started by the stack."""
        url = self.settings.s3_endpoint_url
        return bool(url) and urlsplit(url).scheme == "http" and super().local

    def check_prerequisites(self) -> None:
        """Moto's server must be installed.

        Raises:
            StackError: When it is not.
        """
        moto_server()

    def command(self) -> list[str]:
        """``moto_server -H HOST -p PORT``."""
        return [str(moto_server()), "-H", self.host, "-p", str(self.port)]

    def client(self) -> Any:
        """A boto3 S3 client for the endpoint: path-style addressing, short timeouts."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.settings.s3_endpoint_url,
                aws_access_key_id=self.settings.s3_access_key_id.get_secret_value(),
                aws_secret_access_key=self.settings.s3_secret_access_key.get_secret_value(),
                region_name=self.settings.s3_region or "us-east-1",
                config=Config(
                    s3={"addressing_style": "path"},
                    connect_timeout=2,
                    read_timeout=5,
                    retries={"max_attempts": 1},
                ),
            )
        return self._client

    def probe(self, timeout: float) -> None:
        """List the buckets.

        Args:
            timeout: Unused: the client has its own short timeouts.

        Raises:
            botocore.exceptions.BotoCoreError: When the request fails.
            botocore.exceptions.ClientError: When the server refuses it.
        """
        self.client().list_buckets()

    def after_ready(self, started: bool) -> None:
        """Create the settings' bucket when it is missing (with no location constraint).

        Args:
            started: Not used: the bucket is checked on every ``up``.

        Raises:
            StackError: When the bucket cannot be created.
        """
        bucket = self.settings.s3_bucket
        client = self.client()
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket in names:
            return
        try:
            client.create_bucket(Bucket=bucket)
        except Exception as exc:
            raise StackError(f"cannot create bucket {bucket!r} at {self.endpoint}: {exc}") from exc
        self.report(f"created bucket {bucket!r}")
