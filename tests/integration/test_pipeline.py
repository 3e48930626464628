"""The whole path on real parts: loopback feeds → fetcher → classifier → notifier → alerts."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from dohawatch.demo.feeds import ReplayServer
from dohawatch.shared.codec import decode, encode, header
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.events import Alert, ClassifiedItem, NewsItem, Severity
from dohawatch.shared.kafka import Topics
from dohawatch.shared.settings import Settings

from .conftest import read_topic, running

pytestmark = pytest.mark.integration
TOPICS = Topics.with_prefix("dohawatch.")


def replay_feeds(server: ReplayServer) -> list[FeedConfig]:
    return [FeedConfig(url=server.url(slug), name=o["name"]) for slug, o in server.outlets.items()]


async def test_feed_items_become_a_corroborated_withdrawal_alert(
    settings: Settings, feed_server: ReplayServer
) -> None:
    """The 24 July 2025 recall reaches the alerts topic as one high alert with all its sources."""
    async with running(settings, replay_feeds(feed_server)):
        alerts = await read_topic(settings.kafka_bootstrap_servers or "", TOPICS.alerts, 12)
        raw = await read_topic(
            settings.kafka_bootstrap_servers or "", TOPICS.raw, len(feed_server.items)
        )
    decoded = [decode(r.value, r.headers, Alert) for r in alerts]
    for record in alerts:
        assert header(record.headers, "ce_type") == "dohawatch.alert"
        assert header(record.headers, "content-type") == "application/json"
    withdrawn = [a for a in decoded if a.event_type == "delegation_withdrawn"]
    latest = max(withdrawn, key=lambda a: a.revision)
    assert latest.severity is Severity.HIGH
    assert latest.revision == 4
    assert len({a.alert_id for a in withdrawn}) == 1
    assert {s.outlet for s in latest.sources} == {
        "Jerusalem Desk",
        "World Brief",
        "Levant Daily",
        "Nile Times",
    }
    # every item published exactly once
    assert len(raw) == len(feed_server.items)
    assert len({r.key for r in raw}) == len(raw)


async def test_a_restarted_fetcher_publishes_nothing_twice(
    settings: Settings, feed_server: ReplayServer
) -> None:
    """Feed state survives a restart: the second run finds every item already published."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    for _ in range(2):
        async with running(settings, replay_feeds(feed_server), services=["fetcher"]):
            await read_topic(bootstrap, TOPICS.raw, len(feed_server.items), seconds=10)
            await asyncio.sleep(1.5)  # at least two more polls of every feed
    raw = await read_topic(bootstrap, TOPICS.raw, len(feed_server.items) + 1, seconds=3)
    assert len(raw) == len(feed_server.items)


async def test_poison_messages_are_deadlettered_and_work_continues(settings: Settings) -> None:
    """Undecodable input goes to the dead-letter topic with its reason; the next item flows."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    async with running(settings, services=["classifier"]) as pipeline:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                TOPICS.raw, b"{not json", key=b"bad", headers=[("ce_type", b"dohawatch.news.item")]
            )
            item = NewsItem.model_validate_json(
                json.dumps(
                    {
                        "item_id": "it1-good",
                        "feed_url": "https://f.example",
                        "source": "s",
                        "url": "https://f.example/1",
                        "title": "Hamas delivers response to Gaza ceasefire proposal",
                        "summary": "",
                        "published_at": None,
                        "fetched_at": "2025-07-24T10:00:00Z",
                    }
                )
            )
            good = encode(item, TOPICS.raw)
            await producer.send_and_wait(good.topic, good.value, key=good.key, headers=good.headers)
        finally:
            await producer.stop()
        dead = await read_topic(bootstrap, TOPICS.deadletter, 1)
        classified = await read_topic(bootstrap, TOPICS.classified, 1)
        ops = pipeline.contexts["classifier"].ops_port
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{ops}/metrics")).text
            ready = await client.get(f"http://127.0.0.1:{ops}/readyz")
            alive = await client.get(f"http://127.0.0.1:{ops}/healthz")
    assert header(dead[0].headers, "dlq_reason") == "invalid-body"
    assert header(dead[0].headers, "dlq_service") == "classifier"
    assert dead[0].value == b"{not json"
    result = decode(classified[0].value, classified[0].headers, ClassifiedItem)
    assert result.item.item_id == "it1-good"
    assert result.relevant
    assert (
        'dohawatch_deadletters_total{reason="invalid-body",topic="dohawatch.news.raw"} 1.0'
        in metrics
    )
    assert ready.status_code == 200
    assert ready.json()["conditions"] == {"kafka": True, "broker": True}
    assert alive.status_code == 200
