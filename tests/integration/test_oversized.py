"""Oversized input on the real broker: a 5 MB message to a stage's input topic is
dead-lettered as a bounded record of itself, and the next good message flows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from dohawatch.shared.at_least_once import DEADLETTER_BODY_BYTES, produce_and_wait
from dohawatch.shared.codec import Outgoing, decode, encode, header
from dohawatch.shared.events import Alert, ClassifiedItem, NewsItem
from dohawatch.shared.kafka import Topics
from dohawatch.shared.settings import Settings

from .conftest import read_topic, running

pytestmark = pytest.mark.integration
TOPICS = Topics.with_prefix("dohawatch.")
FIVE_MB = 5 * 1024 * 1024


async def test_five_megabyte_messages_are_deadlettered_and_the_next_item_alerts(
    settings: Settings,
) -> None:
    """A 5 MB body on news.raw and on news.classified each leaves a 64 KiB dead letter
    naming its size and offset; a good item after them is classified and alerted."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    item = NewsItem(
        item_id="it1-after-the-big-one",
        feed_url="https://f.example/feed",
        source="Wire",
        url="https://f.example/1",
        title="Israel recalls its negotiating team from Doha",
        summary="Israel recalled its negotiating team from Doha for consultations with Hamas.",
        published_at=None,
        fetched_at=datetime(2025, 7, 24, 10, tzinfo=UTC),
    )
    async with running(settings, services=["classifier", "notifier"]):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 * 1024 * 1024)
        await producer.start()
        try:
            for topic, ce_type in (
                (TOPICS.raw, b"dohawatch.news.item"),
                (TOPICS.classified, b"dohawatch.news.classified"),
            ):
                await producer.send_and_wait(
                    topic, b"{" + b"x" * FIVE_MB, key=b"big", headers=[("ce_type", ce_type)]
                )
            good = encode(item, TOPICS.raw)
            await producer.send_and_wait(good.topic, good.value, key=good.key, headers=good.headers)
        finally:
            await producer.stop()
        dead = await read_topic(bootstrap, TOPICS.deadletter, 2)
        classified = await read_topic(bootstrap, TOPICS.classified, 2)
        alerts = await read_topic(bootstrap, TOPICS.alerts, 1)
    assert sorted(header(d.headers, "dlq_topic") for d in dead) == [TOPICS.classified, TOPICS.raw]
    for letter in dead:
        assert header(letter.headers, "dlq_size") == str(FIVE_MB + 1)
        assert header(letter.headers, "dlq_truncated") == "true"
        assert header(letter.headers, "dlq_offset") == "0"
        assert len(letter.value) == DEADLETTER_BODY_BYTES
    good_ones = [r for r in classified if r.key != b"big"]
    assert (
        decode(good_ones[0].value, good_ones[0].headers, ClassifiedItem).item.item_id
        == item.item_id
    )
    alert = decode(alerts[0].value, alerts[0].headers, Alert)
    assert alert.event_type == "delegation_withdrawn"


async def test_an_output_too_large_to_send_is_deadlettered_alone(settings: Settings) -> None:
    """A message over the producer's 1 MiB limit goes to the dead-letter topic as a
    bounded record of itself; the other messages of the batch are sent, and each
    message that asks is told its offset (the refused one is not: it is not there)."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # 1 MiB max_request_size
    await producer.start()
    told: list[tuple[bytes, int]] = []
    try:
        big = Outgoing(
            TOPICS.classified,
            b"k-big",
            b"x" * (2 * 1024 * 1024),
            [("ce_type", b"t")],
            written=lambda offset: told.append((b"k-big", offset)),
        )
        small = Outgoing(
            TOPICS.classified,
            b"k-small",
            b"{}",
            [("ce_type", b"t")],
            written=lambda offset: told.append((b"k-small", offset)),
        )
        refused = await produce_and_wait(
            producer, [big, small], deadletter_topic=TOPICS.deadletter, service="classifier"
        )
    finally:
        await producer.stop()
    sent = await read_topic(bootstrap, TOPICS.classified, 1)
    dead = await read_topic(bootstrap, TOPICS.deadletter, 1)
    assert refused == 1
    assert [r.key for r in sent] == [b"k-small"]
    assert told == [(b"k-small", sent[0].offset)]
    assert dead[0].key == b"k-big"
    assert len(dead[0].value) == DEADLETTER_BODY_BYTES
    assert header(dead[0].headers, "dlq_reason") == "too-large"
    assert header(dead[0].headers, "dlq_topic") == TOPICS.classified
    assert header(dead[0].headers, "dlq_size") == str(2 * 1024 * 1024)
