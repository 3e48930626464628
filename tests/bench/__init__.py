"""Benchmarks for ``make bench``: figures, never pass or fail."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from dohawatch.shared.broker import EmbeddedBroker
from dohawatch.shared.settings import Settings, load_settings

CORES = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()


def pin_to_one_core() -> None:
    """Run this process on one core, as the issues ask; helpers started later are
    given back every core with ``unpin``."""
    if CORES:
        os.sched_setaffinity(0, {min(CORES)})


def unpin(pid: int | None) -> None:
    """Run a helper process (broker, web server) on the cores this process was not
    pinned to (every core on a one-core machine): each of its threads, since
    affinity is per thread on Linux."""
    if not (CORES and pid):
        return
    others = CORES - {min(CORES)} or CORES
    tasks = Path(f"/proc/{pid}/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.exists() else [pid]:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, others)


@contextlib.asynccontextmanager
async def on_embedded_broker(**overrides: object) -> AsyncIterator[Settings]:
    """A fresh embedded broker and settings pointing at it, with ``overrides``."""
    broker = EmbeddedBroker()
    await broker.start()
    unpin(broker.pid)
    try:
        yield load_settings(
            kafka_bootstrap_servers=broker.bootstrap,
            kafka_idempotence=False,  # the embedded broker refuses idempotent producers
            kafka_rebalance_timeout_ms=1000,
            topic_partitions=1,
            **overrides,
        )
    finally:
        await broker.stop()
