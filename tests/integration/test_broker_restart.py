"""A broker that restarts empty (the embedded one keeps everything in memory): the
services notice, say so on /readyz, recreate the topics and skip nothing sent after."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from dohawatch.app import RunPlan, run_plan
from dohawatch.demo.feeds import ReplayServer
from dohawatch.shared.broker import EmbeddedBroker
from dohawatch.shared.codec import decode, encode
from dohawatch.shared.config_file import FeedConfig, FileConfig
from dohawatch.shared.errors import BrokerError
from dohawatch.shared.events import ClassifiedItem, NewsItem
from dohawatch.shared.kafka import Topics, read_to_high_watermarks
from dohawatch.shared.runtime import ServiceContext
from dohawatch.shared.settings import Settings, load_settings
from tests.factories import until

from .conftest import configure, free_port, read_topic, running

pytestmark = pytest.mark.integration
TOPICS = Topics.with_prefix("dohawatch.")


def item(n: int) -> NewsItem:
    return NewsItem(
        item_id=f"it1-restart-{n}",
        feed_url="https://f.example/feed",
        source="Wire",
        url=f"https://f.example/{n}",
        title=f"Hamas delivers its response to the Gaza ceasefire proposal ({n})",
        summary="",
        published_at=None,
        fetched_at=datetime(2025, 7, 24, 10, tzinfo=UTC),
    )


async def publish(bootstrap: str, items: Sequence[NewsItem]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for news in items:
            out = encode(news, TOPICS.raw)
            await producer.send_and_wait(out.topic, out.value, key=out.key, headers=out.headers)
    finally:
        await producer.stop()


async def ready(client: httpx.AsyncClient, port: int, want: int, seconds: float = 20.0) -> None:
    """Wait until ``/readyz`` answers ``want``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code != want:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/readyz never answered {want} within {seconds} s")
        await asyncio.sleep(0.1)


async def test_a_broker_back_empty_is_noticed_and_no_later_item_is_skipped(
    settings: Settings, broker: EmbeddedBroker
) -> None:
    """While the broker is down /readyz is 503; when it is back without its data the
    topics are recreated with their partitions, the consumer's positions past the new
    logs' ends are reset loudly, and every item sent after the restart is classified."""
    settings = configure(settings, kafka_check_interval_seconds=0.3)
    bootstrap = broker.bootstrap
    async with running(settings, services=["classifier"]) as plan:
        await until(lambda: "classifier" in plan.contexts)
        port = plan.contexts["classifier"].ops_port
        async with httpx.AsyncClient() as client:
            await ready(client, port, 200)
            await publish(bootstrap, [item(n) for n in range(12)])  # every partition moves on
            await read_topic(bootstrap, TOPICS.classified, 12)
            await broker.stop()
            await ready(client, port, 503)
            await broker.start()
            await ready(client, port, 200)
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
            try:
                described = await admin.describe_topics([TOPICS.raw, TOPICS.classified])
            finally:
                await admin.close()
            after = [item(n) for n in range(100, 106)]
            await publish(bootstrap, after)
            records = await read_topic(bootstrap, TOPICS.classified, len(after), seconds=30)
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    classified = {decode(r.value, r.headers, ClassifiedItem).item.item_id for r in records}
    assert classified == {a.item_id for a in after}
    assert all(len(t["partitions"]) == settings.topic_partitions for t in described)
    assert "dohawatch_broker_topics_recreated_total 1.0" in metrics
    assert 'dohawatch_offset_resets_total{topic="dohawatch.news.raw"}' in metrics
    assert "dohawatch_broker_up 1.0" in metrics


def test_dohawatch_broker_exits_when_its_broker_process_dies() -> None:
    """``dohawatch broker`` whose Tansu process is killed logs it and exits non-zero."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [sys.executable, "-m", "dohawatch", "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert b"embedded broker on" in process.stdout.readline()
        found = subprocess.run(  # noqa: S603
            ["pgrep", "-f", f"listener-url tcp://127.0.0.1:{port}"],  # noqa: S607
            capture_output=True,
            check=True,
        )
        for pid in found.stdout.split():
            os.kill(int(pid), signal.SIGKILL)
        code = process.wait(timeout=15)
        _, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 1
    assert b"embedded_broker_exited" in err


def _total(ctx: ServiceContext, name: str, **labels: str) -> float:
    """A metric's value summed over the samples matching ``labels``."""
    return sum(
        sample.value
        for metric in ctx.registry.collect()
        for sample in metric.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def test_a_graceful_stop_on_the_embedded_broker_loses_no_fetched_item(
    tmp_path: Path, feed_server: ReplayServer
) -> None:
    """Stopped the moment the fetcher has published every item, ``dohawatch run`` on its
    in-memory broker still has the classifier read all of them and the notifier all the
    classifier wrote, before the broker (and its memory) goes."""
    settings = load_settings(
        kafka_bootstrap_servers=None,  # the pipeline starts its own embedded broker
        state_dir=tmp_path / "state",
        fetch_interval_seconds=1.0,
        fetch_min_interval_seconds=0.5,
        fetch_allowed_networks="127.0.0.0/8,::1/128",
        fetch_host_min_gap_seconds=0.0,
        fetcher_http_port=0,
        classifier_http_port=0,
        notifier_http_port=0,
        topic_partitions=3,
    )
    feeds = tuple(
        FeedConfig(url=feed_server.url(slug), name=o["name"])
        for slug, o in feed_server.outlets.items()
    )
    plan = RunPlan(settings, FileConfig(feeds=feeds), routes=())
    stop = asyncio.Event()
    task = asyncio.create_task(run_plan(plan, stop))
    await until(
        lambda: (
            "fetcher" in plan.contexts
            and _total(plan.contexts["fetcher"], "dohawatch_fetch_items_total")
            == len(feed_server.items)
        ),
        seconds=30,
    )
    stop.set()
    await asyncio.wait_for(task, 60)
    classifier, notifier = plan.contexts["classifier"], plan.contexts["notifier"]
    raw, classified = TOPICS.raw, TOPICS.classified
    consumed = "dohawatch_messages_consumed_total"
    assert _total(classifier, consumed, topic=raw) == len(feed_server.items)
    written = _total(classifier, "dohawatch_messages_produced_total", topic=classified)
    assert written > 0
    assert _total(notifier, consumed, topic=classified) == written


# A client that cannot stop in its bound is left to the garbage collector, which
# warns about its open sockets: expected here, and collected within this test.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_service_stops_within_its_bound_when_the_broker_is_gone(
    settings: Settings, broker: EmbeddedBroker
) -> None:
    """With the broker killed under it, a stopping classifier and notifier finish within
    half a minute (a batch in flight and each Kafka client get 5 s), instead of hanging.
    A notifier still reading its partitions' state when the broker went ends with
    that BrokerError (its restart reads the state again); either way it ends in time."""
    bootstrap = broker.bootstrap
    plan = RunPlan(settings, FileConfig(), services=["classifier", "notifier"], routes=())
    stop = asyncio.Event()
    task = asyncio.create_task(run_plan(plan, stop))
    await publish(bootstrap, [item(n) for n in range(3)])
    await read_topic(bootstrap, TOPICS.classified, 3)
    await broker.stop()
    stop.set()
    started = asyncio.get_running_loop().time()
    with contextlib.suppress(BrokerError):
        await asyncio.wait_for(task, 60)
    took = asyncio.get_running_loop().time() - started
    del plan, task
    gc.collect()
    assert took < 30


async def test_a_read_to_the_end_that_stops_short_is_an_error_not_a_part(
    broker: EmbeddedBroker,
) -> None:
    """A partition whose reading stops short of its watermark (here the broker stops
    answering partway) raises BrokerError, naming how far it got: returned as it
    stood, it would be taken for the whole (a notifier's state older than the input
    it resumes from)."""
    tp = TopicPartition("dohawatch.read-test", 0)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        sent = [await producer.send(tp.topic, b"x" * 1000, partition=0) for _ in range(400)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=1024,  # a record or so per fetch: the read takes many
        fetch_max_bytes=1024,
        request_timeout_ms=30_000,
    )
    await consumer.start()
    pid = broker.pid
    assert pid is not None
    stopped = False

    async def stop_partway() -> None:
        nonlocal stopped
        await until(lambda: consumer.highwater(tp) is not None, 30)  # the first fetch is in
        os.kill(pid, signal.SIGSTOP)
        stopped = True

    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        stopper = asyncio.create_task(stop_partway())
        with pytest.raises(BrokerError, match=r"dohawatch\.read-test\[0\] at \d+ of 400"):
            await read_to_high_watermarks(consumer, [tp], quiet_seconds=2.0)
        assert stopped
        await stopper
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), 10)
