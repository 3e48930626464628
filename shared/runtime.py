"""What every service process needs around its work: ops endpoint, clients, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from .kafka import Topics, make_producer
from .metrics import build_info
from .ops import OpsServer, Readiness
from .settings import Settings

__all__ = ["ServiceContext", "install_signal_handlers", "service_context"]


@dataclass(slots=True)
class ServiceContext:
    """Handed to a service's ``run``: everything it may touch, nothing global."""

    name: str
    settings: Settings
    bootstrap: str
    topics: Topics
    registry: CollectorRegistry
    readiness: Readiness
    producer: AIOKafkaProducer
    stop: asyncio.Event
    ops_port: int


def install_signal_handlers(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM and SIGINT, so services finish their batch and commit."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(sig, stop.set)


@contextlib.asynccontextmanager
async def service_context(
    name: str, settings: Settings, bootstrap: str, port: int, stop: asyncio.Event, *conditions: str
) -> AsyncIterator[ServiceContext]:
    """Start the ops endpoint and a started producer; stop both on exit.

    ``/readyz`` reports ``kafka`` plus ``conditions`` (sinks...), each set by the service.
    """
    registry = CollectorRegistry()
    build_info(registry, name)
    readiness = Readiness("kafka", *conditions)
    ops = OpsServer(registry, readiness, settings.http_host, port)
    ops.start()
    producer = make_producer(settings, bootstrap)
    try:
        await producer.start()
        yield ServiceContext(
            name,
            settings,
            bootstrap,
            Topics.with_prefix(settings.topic_prefix),
            registry,
            readiness,
            producer,
            stop,
            ops.port,
        )
    finally:
        await producer.stop()
        ops.stop()
