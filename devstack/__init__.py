"""The local development stack: Kafka, Redis and an S3 API server, run from ``.stack/``.

``python -m devstack up|down|status`` (``make stack-up`` ...) starts, stops and checks
them. Every service binds to the addresses in the project's settings, so the tests that use
them run unchanged against a real deployment. The functions here are the programmatic entry
points; :mod:`devstack.cli` is the command line.
"""

from __future__ import annotations

from devstack.base import Service, ServiceStatus, State
from devstack.errors import StackError
from devstack.paths import StackPaths
from devstack.stack import down, status, up

__all__ = [
    "Service",
    "ServiceStatus",
    "StackError",
    "StackPaths",
    "State",
    "down",
    "status",
    "up",
]
