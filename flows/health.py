"""The job's health over HTTP, for Kubernetes' probes: ``/live`` and ``/ready``.

``/ready`` answers 503 while a dependency the job waits for is unreachable (see
:mod:`state.outage`), with which one and since when; 200 otherwise. ``/live`` answers 200 while
the process runs (an outage is waited out, not a reason to restart the pod).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from state.outage import services_down

logger = logging.getLogger("clickstream.health")


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/live":
            self._answer(200, {"live": True})
        elif self.path == "/ready":
            down = {
                service: datetime.fromtimestamp(since, UTC).isoformat()
                for service, since in services_down().items()
            }
            self._answer(503 if down else 200, {"ready": not down, "down": down})
        else:
            self._answer(404, {"error": "use /live or /ready"})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Probes come every few seconds: not logged."""


def serve(port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer | None:
    """Answer the probes on ``port`` in a background thread; None (logged) if the port is taken."""
    try:
        server = ThreadingHTTPServer((host, port), _Health)
    except OSError as error:
        logger.warning("the health endpoint cannot listen on port %d: %s", port, error)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server
