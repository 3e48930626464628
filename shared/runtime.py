"""What every service process needs around its work: ops endpoint, clients, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from .at_least_once import BROKER_TIMEOUT_SECONDS, BatchHandler, run_pipeline
from .kafka import Topics, make_consumer, make_producer
from .logs import log_event
from .membership import kept_membership
from .metrics import BrokerMetrics, PipelineMetrics, build_info
from .ops import OpsServer, Readiness
from .settings import Settings
from .watch import watch_broker

__all__ = [
    "SHUTDOWN_SECONDS",
    "ServiceContext",
    "consume",
    "exit_stuck",
    "install_signal_handlers",
    "service_context",
    "stop_within",
    "waits_in",
]

T = TypeVar("T", bound=BaseModel)

SHUTDOWN_SECONDS = 5.0
"""How long stopping a Kafka client may take; a service stops within a few of these."""
STOP_GRACE_SECONDS = 25.0
"""How long a process may take to stop once asked; then it exits anyway (code 1),
naming what it was still waiting for. Below Kubernetes' default grace of 30 s, so
the log says what hung before the kubelet's SIGKILL would."""
log = logging.getLogger("dohawatch")


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


def install_signal_handlers(stop: asyncio.Event, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """Set ``stop`` on SIGTERM and SIGINT, so services finish their batch and commit;
    if the process is still running ``grace_seconds`` later, exit it (see
    :func:`exit_stuck`)."""
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        if not stop.is_set():
            stop.set()
            # A timer, not a task: asyncio.run cancels the tasks left at its end and
            # waits for them, and a timer still fires while it does.
            loop.call_later(grace_seconds, exit_stuck, loop)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(sig, stopping)


def exit_stuck(loop: asyncio.AbstractEventLoop) -> None:
    """Log each task the stopping process still waits on, with where it waits, and
    exit with code 1. What was committed stays committed; the rest is replayed by
    the next owner of its partitions, as after a crash."""
    waiting = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in waiting:
        log_event(
            log,
            "stop_stuck_task",
            level=logging.ERROR,
            status="waiting",
            task=task.get_name(),
            waits_in=waits_in(task),
        )
    log_event(log, "stop_stuck", level=logging.ERROR, status="exited", tasks=len(waiting))
    logging.shutdown()
    os._exit(1)


@contextlib.asynccontextmanager
async def service_context(
    name: str, settings: Settings, bootstrap: str, port: int, stop: asyncio.Event, *conditions: str
) -> AsyncIterator[ServiceContext]:
    """Start the ops endpoint and a started producer; stop both on exit.

    ``/readyz`` reports ``kafka`` plus ``conditions`` (sinks...), each set by the service.
    """
    registry = CollectorRegistry()
    build_info(registry, name)
    readiness = Readiness("kafka", "broker", *conditions)
    ops = OpsServer(registry, readiness, settings.http_host, port)
    ops.start()
    topics = Topics.with_prefix(settings.topic_prefix)
    producer = make_producer(settings, bootstrap)
    watching = asyncio.Event()
    watch = asyncio.create_task(
        watch_broker(settings, bootstrap, topics, readiness, BrokerMetrics(registry), watching),
        name=f"{name}-broker-watch",
    )
    try:
        await asyncio.wait_for(producer.start(), BROKER_TIMEOUT_SECONDS)
        yield ServiceContext(
            name,
            settings,
            bootstrap,
            topics,
            registry,
            readiness,
            producer,
            stop,
            ops.port,
        )
    finally:
        watching.set()
        await watch
        await stop_within(producer.stop(), f"{name} producer")
        ops.stop()


async def stop_within(closing: Awaitable[None], what: str) -> None:
    """Await ``closing`` (a client's stop) for at most ``SHUTDOWN_SECONDS``: a
    broker that is gone must not keep a stopping service alive, nor may a client
    that fails while it closes (aiokafka's consumer can raise the cancellation of
    its own fetch task) stop the rest of the shutdown.

    A close that overruns is cancelled but not waited for: ``asyncio.wait_for``
    would wait for the cancellation to finish, which a client blocked inside its
    group coordinator may never do. What is left of it is the stop grace's to end
    (:func:`install_signal_handlers`)."""
    task = asyncio.ensure_future(closing)
    try:
        done, _ = await asyncio.wait([task], timeout=SHUTDOWN_SECONDS)
    except asyncio.CancelledError:
        task.cancel()
        raise  # we are being cancelled ourselves
    if not done:
        task.cancel()
        log_event(log, "stop_timeout", level=logging.WARNING, status="timeout", client=what)
        return
    try:
        task.result()
    except asyncio.CancelledError:
        log_event(log, "stop_failed", level=logging.WARNING, status="cancelled", client=what)
    except KafkaError as exc:
        log_event(
            log, "stop_failed", level=logging.WARNING, status="error", client=what, error=repr(exc)
        )


def waits_in(task: asyncio.Task[Any]) -> str:
    """Where a suspended task waits: its eight innermost awaits, innermost first."""
    return " < ".join(
        f"{f.f_code.co_name} ({os.path.basename(f.f_code.co_filename)}:{f.f_lineno})"
        for f in reversed(_awaiting(task.get_coro())[-8:])
    )


def _awaiting(coro: object) -> list[FrameType]:
    """The frames of a suspended coroutine and of each coroutine it awaits, outermost
    first (``Task.get_stack`` gives only the outermost)."""
    frames: list[FrameType] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def revoke_wait_seconds(settings: Settings) -> float:
    """How long a revoke may wait for work in flight: most of the rebalance timeout,
    the time the group gives a member to rejoin."""
    return settings.kafka_rebalance_timeout_ms / 1000 * 0.8


async def consume(
    ctx: ServiceContext,
    *,
    group: str,
    topic: str,
    model: type[T],
    handler: BatchHandler[T],
    client_id: str | None = None,
) -> None:
    """A consuming service's life: join ``group`` on ``topic`` (as ``client_id``,
    the replica's name, when given), report ready, run the at-least-once loop
    until ``ctx.stop`` is set, then report not ready and leave the group within
    ``SHUTDOWN_SECONDS``.

    Raises:
        TimeoutError: the consumer did not start within ``BROKER_TIMEOUT_SECONDS``.
        BrokerError: producing failed (see :func:`~.at_least_once.run_pipeline`).
    """
    settings = ctx.settings
    if client_id is not None:
        settings = settings.model_copy(update={"kafka_client_id": client_id})
    consumer = make_consumer(settings, ctx.bootstrap, group)
    await asyncio.wait_for(consumer.start(), BROKER_TIMEOUT_SECONDS)
    ctx.readiness.set("kafka")
    try:
        async with kept_membership(consumer, settings, ctx.bootstrap, group):
            await run_pipeline(
                consumer,
                ctx.producer,
                service=ctx.name,
                topics=[topic],
                model=model,
                handler=handler,
                deadletter_topic=ctx.topics.deadletter,
                metrics=PipelineMetrics(ctx.registry),
                stop=ctx.stop,
                max_records=ctx.settings.kafka_max_poll_records,
                revoke_wait_seconds=revoke_wait_seconds(ctx.settings),
            )
    finally:
        ctx.readiness.set("kafka", False)
        await stop_within(consumer.stop(), f"{ctx.name} consumer")
