"""Real loopback parts for integration tests: the embedded broker, the feed server,
Slack and an SMTP mailbox."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from dohawatch.app import RunPlan, run_plan
from dohawatch.demo.feeds import ReplayServer, load_replay
from dohawatch.shared.broker import EmbeddedBroker
from dohawatch.shared.config_file import FeedConfig, FileConfig, RouteConfig
from dohawatch.shared.settings import Settings, load_settings

from .servers import Mailbox, SlackServer


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    """A fresh in-memory broker per test (it starts in well under a second)."""
    b = EmbeddedBroker()
    await b.start()
    yield b
    await b.stop()


@pytest.fixture
def feed_server() -> Iterator[ReplayServer]:
    """The bundled replay feeds, all items visible, on 127.0.0.1."""
    outlets, items = load_replay()
    server = ReplayServer(outlets, items, step=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """Settings pointing at the test broker, as an operator would set them."""
    return load_settings(
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_idempotence=False,  # the embedded broker refuses idempotent producers
        kafka_rebalance_timeout_ms=1000,
        state_dir=tmp_path / "state",
        fetch_interval_seconds=0.5,
        fetch_min_interval_seconds=0.2,
        fetch_allowed_networks="127.0.0.0/8,::1/128",  # the loopback feed servers
        fetch_host_min_gap_seconds=0.0,  # every test feed is on one host
        fetcher_http_port=0,
        classifier_http_port=0,
        notifier_http_port=0,
        topic_partitions=3,
    )


async def read_topic(bootstrap: str, topic: str, want: int, seconds: float = 30.0) -> list:  # type: ignore[type-arg]
    """Read ``topic`` from the beginning with an independent consumer until ``want`` records."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    records: list = []  # type: ignore[type-arg]
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while len(records) < want and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    """A loopback Slack that answers 200 unless a test scripts otherwise."""
    server = SlackServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on loopback collecting mails."""
    box = Mailbox()
    box.start()
    yield box
    box.stop()


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    feeds: Sequence[FeedConfig] = (),
    services: Sequence[str] = ("fetcher", "classifier", "notifier"),
    routes: Sequence[RouteConfig] | None = (),
) -> AsyncIterator[RunPlan]:
    """Run ``services`` as ``dohawatch run`` would; ``routes=None`` takes them from settings."""
    plan = RunPlan(settings, FileConfig(feeds=tuple(feeds)), services=services, routes=routes)
    stop = asyncio.Event()
    task = asyncio.create_task(run_plan(plan, stop))
    await asyncio.wait_for(plan.started.wait(), 10)
    try:
        yield plan
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def configure(settings: Settings, **update: object) -> Settings:
    """``settings`` with ``update`` applied and validated, as if from the environment."""
    return load_settings(**{**settings.model_dump(), **update})


def free_port() -> int:
    """A port nothing listens on now (for servers that need one named up front)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
