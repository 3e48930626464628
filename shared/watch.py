"""Watching the broker: is it answering, and does it still have our topics?

Every service runs :func:`watch_broker` beside its work. Each check asks the
broker for its topic list within a bound. The answer (or its absence) is the
``broker`` condition of ``/readyz``, so an orchestrator stops routing to a
service whose broker is gone and a dashboard shows it. A broker that answers
without the pipeline's topics has lost its data (an in-memory broker restarted,
topics deleted): the topics are created again at once, before producers'
auto-creation can make them with other partition counts, and the event is
logged as an error and counted. Consumers then find their positions past the
new logs' ends and read them from the start (``shared/at_least_once.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from .errors import BrokerError
from .kafka import Topics, client_options, ensure_topics
from .logs import log_event
from .metrics import BrokerMetrics
from .ops import Readiness
from .settings import Settings

__all__ = ["watch_broker"]

log = logging.getLogger("dohawatch.broker")


async def _topics(settings: Settings, bootstrap: str, bound_seconds: float) -> set[str]:
    """The broker's topic names, asked on a connection of its own, each step
    within ``bound_seconds``."""
    admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
    try:
        await asyncio.wait_for(admin.start(), bound_seconds)
        return set(await asyncio.wait_for(admin.list_topics(), bound_seconds))
    finally:
        with contextlib.suppress(Exception):  # closing a client that never connected
            await asyncio.wait_for(admin.close(), bound_seconds)


async def watch_broker(
    settings: Settings,
    bootstrap: str,
    topics: Topics,
    readiness: Readiness,
    metrics: BrokerMetrics,
    stop: asyncio.Event,
) -> None:
    """Check the broker every ``kafka_check_interval_seconds`` until ``stop``.

    Sets the ``broker`` readiness condition and ``dohawatch_broker_up``; logs
    ``broker_unreachable`` and ``broker_reachable`` when that changes, and
    ``topics_recreated`` when the broker had lost the pipeline's topics.
    """
    interval = settings.kafka_check_interval_seconds
    reachable: bool | None = None
    while not stop.is_set():
        try:
            names = await _topics(settings, bootstrap, interval)
        except (KafkaError, OSError, TimeoutError) as exc:
            up, error = False, repr(exc)
        else:
            up, error = True, ""
            missing = sorted({*topics.all(), *topics.tables()} - names)
            if missing:
                log_event(
                    log,
                    "topics_recreated",
                    level=logging.ERROR,
                    status="broker-lost-topics",
                    topics=",".join(missing),
                    detail="messages not yet consumed when the broker lost its data are gone",
                )
                metrics.recreated.inc()
                try:
                    await ensure_topics(settings, bootstrap, topics)
                except BrokerError as exc:
                    up, error = False, str(exc)
        readiness.set("broker", up)
        metrics.up.set(1 if up else 0)
        if up != reachable:
            if up:
                log_event(log, "broker_reachable", status="ok", bootstrap=bootstrap)
            else:
                log_event(
                    log,
                    "broker_unreachable",
                    level=logging.ERROR,
                    status="unreachable",
                    bootstrap=bootstrap,
                    error=error,
                )
            reachable = up
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
