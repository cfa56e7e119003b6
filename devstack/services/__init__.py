"""The services of the local stack, in start order.

Adding one (say Trino) means writing a :class:`devstack.base.Service` subclass in a module
here and listing it in :data:`SERVICES`.
"""

from __future__ import annotations

from devstack.base import Service
from devstack.services.kafka import Kafka
from devstack.services.redis import Redis
from devstack.services.s3 import S3
from devstack.services.trino import Trino

SERVICES: tuple[type[Service], ...] = (Kafka, Redis, S3, Trino)
"""Every service the stack manages."""

__all__ = ["S3", "SERVICES", "Kafka", "Redis", "Trino"]
