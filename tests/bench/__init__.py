"""Benchmarks for ``make bench``: figures, never pass or fail."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from dohawatch.shared.broker import EmbeddedBroker
from dohawatch.shared.settings import Settings, load_settings


@contextlib.asynccontextmanager
async def on_embedded_broker(**overrides: object) -> AsyncIterator[Settings]:
    """A fresh embedded broker and settings pointing at it, with ``overrides``."""
    broker = EmbeddedBroker()
    await broker.start()
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
