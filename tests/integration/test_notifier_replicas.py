"""Consumers that share partitions hand them over whole: the at-least-once loop
commits the batch in flight when its partitions are revoked, and a notifier's
stories and deliveries move with its partitions (services/notifier/changelog.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from dohawatch.app import RunPlan
from dohawatch.shared import ids
from dohawatch.shared.at_least_once import run_pipeline
from dohawatch.shared.codec import Outgoing, decode
from dohawatch.shared.events import Alert, ClassifiedItem
from dohawatch.shared.kafka import Topics, ensure_topics, make_consumer, make_producer
from dohawatch.shared.metrics import PipelineMetrics
from dohawatch.shared.settings import Settings
from dohawatch.shared.tables import Claims, read_table
from tests.factories import until

from .conftest import configure, read_topic, running
from .servers import SlackServer
from .test_delivery import publish, report

pytestmark = pytest.mark.integration

TOPICS = Topics.with_prefix("dohawatch.")
STORIES = [f"st1-story-{n}" for n in range(6)]


def story_report(story: str, n: int) -> ClassifiedItem:
    """Outlet ``n``'s report of ``story``."""
    c = report(n)
    item = c.item.model_copy(update={"item_id": f"it1-{story}-{n}"})
    return c.model_copy(update={"item": item, "story_key": story})


class Gated:
    """A handler that records what it handled; with a ``gate``, its first batch
    waits for it."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.blocked = asyncio.Event()
        self.assigned_any = asyncio.Event()
        self.seen: list[str] = []

    async def assigned(self, partitions: set[int]) -> None:
        self.assigned_any.set()

    async def revoked(self, partitions: set[int]) -> None:
        pass

    async def handle(
        self, events: Sequence[ClassifiedItem], partitions: Sequence[int]
    ) -> list[Outgoing]:
        if self.gate is not None and not self.gate.is_set():
            self.blocked.set()
            await self.gate.wait()
        self.seen += [e.item.item_id for e in events]
        return []

    async def acknowledged(self) -> None:
        pass


async def test_a_revoke_commits_the_batch_in_flight(settings: Settings) -> None:
    """A batch still being handled when a second member joins is finished and
    committed before its partitions move: the newcomer handles none of it again.

    The batch is held until the newcomer has partitions, or for 15 s: with the
    revoke waiting for the batch, the newcomer gets none before the batch is
    committed; without, it would be assigned (after about 5 s) and read the
    batch again from the last commit."""
    settings = configure(settings, kafka_rebalance_timeout_ms=30_000)
    bootstrap = settings.kafka_bootstrap_servers or ""
    await ensure_topics(settings, bootstrap, TOPICS)
    reports = [story_report(f"st1-revoke-{n}", 1) for n in range(30)]
    await publish(bootstrap, reports)
    gate = asyncio.Event()
    first, second = Gated(gate), Gated()
    stop = asyncio.Event()
    producer = make_producer(settings, bootstrap)
    await producer.start()
    consumers = [make_consumer(settings, bootstrap, "dohawatch-revoke-test") for _ in range(2)]
    loops = []
    try:
        for consumer, handler in zip(consumers, (first, second), strict=True):
            await consumer.start()
            loops.append(
                asyncio.create_task(
                    run_pipeline(
                        consumer,
                        producer,
                        service="test",
                        topics=[TOPICS.classified],
                        model=ClassifiedItem,
                        handler=handler,
                        deadletter_topic=TOPICS.deadletter,
                        metrics=PipelineMetrics(CollectorRegistry()),
                        stop=stop,
                        revoke_wait_seconds=24.0,
                    )
                )
            )
            if handler is first:
                await asyncio.wait_for(first.blocked.wait(), 30)
        await asyncio.wait([asyncio.ensure_future(second.assigned_any.wait())], timeout=15)
        gate.set()
        await until(lambda: len(set(first.seen) | set(second.seen)) == len(reports), 40)
        await asyncio.sleep(1.0)  # time for a replay to show
    finally:
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()
    assert first.seen, "the first member handled its batch"
    assert not set(first.seen) & set(second.seen), "a handled batch was handled again"
    assert sorted(first.seen + second.seen) == sorted(r.item.item_id for r in reports)


class SlowToLoad(Gated):
    """A handler whose state takes two seconds to load on assignment."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: set[int] = set()
        self.early: list[str] = []  # items handled before their partition's state was loaded

    async def assigned(self, partitions: set[int]) -> None:
        await asyncio.sleep(2.0)
        self.loaded |= partitions

    async def handle(
        self, events: Sequence[ClassifiedItem], partitions: Sequence[int]
    ) -> list[Outgoing]:
        self.early += [
            e.item.item_id for e, p in zip(events, partitions, strict=True) if p not in self.loaded
        ]
        return await super().handle(events, partitions)


async def test_no_batch_is_handled_before_its_partitions_state_is_loaded(
    settings: Settings,
) -> None:
    """aiokafka fetches a new assignment's partitions while the assignment hook still
    runs; the loop holds those records until the hook is done."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    await ensure_topics(settings, bootstrap, TOPICS)
    reports = [story_report(f"st1-load-{n}", 1) for n in range(12)]
    await publish(bootstrap, reports)
    handler = SlowToLoad()
    stop = asyncio.Event()
    producer = make_producer(settings, bootstrap)
    consumer = make_consumer(settings, bootstrap, "dohawatch-load-test")
    await producer.start()
    await consumer.start()
    loop = asyncio.create_task(
        run_pipeline(
            consumer,
            producer,
            service="test",
            topics=[TOPICS.classified],
            model=ClassifiedItem,
            handler=handler,
            deadletter_topic=TOPICS.deadletter,
            metrics=PipelineMetrics(CollectorRegistry()),
            stop=stop,
        )
    )
    try:
        await until(lambda: len(handler.seen) == len(reports), 40)
    finally:
        stop.set()
        await loop
        await consumer.stop()
        await producer.stop()
    assert handler.early == []


def _replica(settings: Settings, slack: SlackServer, tmp_path: Path, name: str) -> Settings:
    return configure(
        settings,
        state_dir=tmp_path / name,
        slack_webhook_url=f"{slack.url}/services/T0/B0/x",
        kafka_rebalance_timeout_ms=5_000,
        delivery_backoff_seconds=0.05,
    )


def _partitions(plan: RunPlan) -> int:
    ctx = plan.contexts.get("notifier")
    value = (
        ctx.registry.get_sample_value(
            "dohawatch_consumer_partitions_assigned", {"topic": TOPICS.classified}
        )
        if ctx
        else None
    )
    return int(value or 0)


def _deliveries(slack: SlackServer) -> Counter[str]:
    return Counter(r.headers["X-Dohawatch-Delivery"] for r in slack.accepted())


async def test_a_story_keeps_its_alert_and_deliveries_when_its_partition_moves(
    settings: Settings, slack: SlackServer, tmp_path: Path
) -> None:
    """Six stories, revised while a second notifier joins and again after it leaves:
    each keeps one alert id and counts its revisions on from where the last owner
    stopped, and Slack hears each notable revision (1, 3 and 10) once."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    a, b = (_replica(settings, slack, tmp_path, name) for name in "ab")

    async def revise(numbers: range, slack_messages: int) -> None:
        await publish(bootstrap, [story_report(s, n) for n in numbers for s in STORIES])
        await until(lambda: len(slack.accepted()) >= slack_messages, 40)

    async with running(a, services=["notifier"], routes=None) as plan_a:
        await revise(range(1, 3), 6)
        async with running(b, services=["notifier"], routes=None) as plan_b:
            await until(lambda: _partitions(plan_b) > 0 and _partitions(plan_a) > 0, 40)
            assert _partitions(plan_a) + _partitions(plan_b) == 3
            await revise(range(3, 5), 12)
            delivered_by_b = plan_b.contexts["notifier"].registry.get_sample_value(
                "dohawatch_deliveries_total", {"route": "slack", "sink": "slack", "outcome": "ok"}
            )
            assert delivered_by_b, "the second notifier delivered its partitions' revisions"
        await until(lambda: _partitions(plan_a) == 3, 40)
        await revise(range(5, 11), 18)
        await asyncio.sleep(1.0)  # time for a wrong extra delivery to show
    expected = {ids.revision_id(ids.alert_id(s), n): 1 for s in STORIES for n in (1, 3, 10)}
    assert _deliveries(slack) == expected
    alerts = [
        decode(r.value, r.headers, Alert)
        for r in await read_topic(bootstrap, TOPICS.alerts, 60, 20)
    ]
    assert {(x.alert_id, x.revision) for x in alerts} == {
        (ids.alert_id(s), n) for s in STORIES for n in range(1, 11)
    }


@contextlib.asynccontextmanager
async def _two_replicas(
    settings: Settings,
) -> AsyncIterator[tuple[Claims, Claims, AIOKafkaProducer]]:
    """Two replicas' claims on the notifier's tables, and a producer to write with."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    await ensure_topics(settings, bootstrap, TOPICS)
    topics = [TOPICS.notifier_stories, TOPICS.notifier_ledger]
    a, b = (Claims(settings, bootstrap, topics, name) for name in ("replica-a", "replica-b"))
    producer = make_producer(settings, bootstrap)
    await producer.start()
    try:
        yield a, b, producer
    finally:
        await a.close()
        await b.close()
        await producer.stop()


async def test_a_claimed_table_reads_no_record_written_under_a_superseded_claim(
    settings: Settings,
) -> None:
    """Replica A claims a partition and writes; B is given the partition and claims
    it; A, not told, writes again, also after B has written. A's checks of those
    writes find B's claim, B's do not, and the table holds A's first value until B
    writes its own, and B's after that."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    stories = TOPICS.notifier_stories
    async with _two_replicas(settings) as (a, b, producer):

        async def write(claims: Claims, value: bytes) -> set[int]:
            header = claims.header(1)
            assert header is not None
            sent = await producer.send(stories, value, key=b"st1-s", headers=[header], partition=1)
            return await claims.superseded({1: (claims.token(1), (await sent).offset)})

        async def value() -> bytes | None:
            table = await read_table(settings, bootstrap, stories, [1], claimed=True)
            return table["st1-s"].value

        await a.claim(producer, [1])
        assert await write(a, b"a-1") == set()
        assert await value() == b"a-1"
        await b.claim(producer, [1])
        assert await write(a, b"a-2") == {1}, "A learns that B holds the partition"
        assert await value() == b"a-1", "A's write after B's claim is not read"
        unclaimed = await read_table(settings, bootstrap, stories, [1])
        assert unclaimed["st1-s"].value == b"a-2", "only a claimed read leaves it out"
        assert await write(b, b"b-1") == set()
        assert await value() == b"b-1"
        assert await write(a, b"a-3") == {1}, "A, slower, writes an older state on"
        assert await value() == b"b-1", "the owner's newer state stands"
        await a.claim(producer, [1])  # the group gives it back to A
        assert await write(b, b"b-2") == {1}
        assert await value() == b"b-1"
        before = a.token(1)
        await a.claim(producer, [1])  # A's batch outlived its revoke; A was given it again
        assert await a.superseded({1: (before, 0)}) == {1}, "written under A's older claim"


async def test_a_replica_learns_which_quiet_partitions_another_has_claimed(
    settings: Settings,
) -> None:
    """With nothing written since, each replica reads its partitions to their end:
    the one whose partition another claimed finds it, its own newer claim is not
    another's, and the other finds its partition claimed back."""
    async with _two_replicas(settings) as (a, b, producer):
        await a.claim(producer, [0, 1])
        assert await a.taken([0, 1]) == set()
        await b.claim(producer, [1])
        assert await a.taken([0, 1]) == {1}
        assert await a.taken([1]) == {1}, "found once, it stays found"
        await a.claim(producer, [1])
        assert await a.taken([0, 1]) == set()
        assert await b.taken([1]) == {1}


async def _story_partition(settings: Settings, story: str) -> int:
    """The partition the notifier keeps ``story`` under, once its outcome is on the
    ledger (a claim after that leaves the delivery done)."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    for _ in range(100):
        ledger = await read_table(settings, bootstrap, TOPICS.notifier_ledger, claimed=True)
        if any(r.value and b'"status":"pending"' not in r.value for r in ledger.values()):
            break
        await asyncio.sleep(0.1)
    stories = await read_table(settings, bootstrap, TOPICS.notifier_stories, claimed=True)
    return stories[story].partition


@contextlib.asynccontextmanager
async def _claimed_elsewhere(
    settings: Settings, slack: SlackServer, tmp_path: Path, story: str, check_seconds: float
) -> AsyncIterator[RunPlan]:
    """A running notifier that has delivered ``story``'s first revision, and whose
    partition of it another replica has then claimed, as one the group gave the
    partition to would."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    replica = configure(
        _replica(settings, slack, tmp_path, "a"), kafka_check_interval_seconds=check_seconds
    )
    async with running(replica, services=["notifier"], routes=None) as plan:
        await publish(bootstrap, [story_report(story, 1)])
        await until(lambda: len(slack.accepted()) == 1, 40)
        partition = await _story_partition(settings, story)
        other = Claims(
            settings, bootstrap, [TOPICS.notifier_stories, TOPICS.notifier_ledger], "elsewhere"
        )
        producer = make_producer(settings, bootstrap)
        await producer.start()
        try:
            await other.claim(producer, [partition])
        finally:
            await producer.stop()
            await other.close()
        yield plan


def _superseded(plan: RunPlan) -> float:
    registry = plan.contexts["notifier"].registry
    return registry.get_sample_value("dohawatch_notifier_partitions_superseded_total") or 0.0


async def test_a_notifier_whose_partition_another_claims_gives_it_up_and_delivers_once(
    settings: Settings, slack: SlackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another replica claims the partition of a story while this notifier still
    holds it (what a group that moved it without telling it does). Its next batch
    there is neither delivered nor committed: it gives the partition up and
    rejoins, reads back a state without what it wrote after the claim, handles the
    batch again, and Slack hears the new revision once. (The periodic check is set
    apart, so the batch is what finds the claim.)"""
    caplog.set_level(logging.INFO)
    bootstrap = settings.kafka_bootstrap_servers or ""
    story = STORIES[0]
    async with _claimed_elsewhere(settings, slack, tmp_path, story, 60) as plan:
        await publish(bootstrap, [story_report(story, n) for n in (2, 3)])
        await until(lambda: len(slack.accepted()) >= 2, 40)
        await asyncio.sleep(1.0)  # time for a wrong extra delivery to show
        assert _superseded(plan) == 1, "the story's partition was given up"
    events = [r.getMessage() for r in caplog.records]
    assert "partitions_superseded" in events
    assert "changelog_superseded" in events, "the rejoined notifier did not read its late write"
    assert events.count("state_restored") >= 2, "it read its state again after rejoining"
    assert _deliveries(slack) == {ids.revision_id(ids.alert_id(story), n): 1 for n in (1, 3)}
    alerts = [
        decode(r.value, r.headers, Alert) for r in await read_topic(bootstrap, TOPICS.alerts, 3, 20)
    ]
    assert {(x.alert_id, x.revision) for x in alerts} >= {
        (ids.alert_id(story), n) for n in (1, 2, 3)
    }


async def test_a_notifier_gives_up_a_quiet_partition_another_claims(
    settings: Settings, slack: SlackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A partition the notifier writes nothing to, claimed by another replica, is
    given up at the next periodic check (its pending deliveries would otherwise go
    on being sent from here); the notifier rejoins, takes it back and delivers the
    story's next revision once."""
    caplog.set_level(logging.INFO)
    bootstrap = settings.kafka_bootstrap_servers or ""
    story = STORIES[1]

    def restores() -> int:
        return [r.getMessage() for r in caplog.records].count("state_restored")

    async with _claimed_elsewhere(settings, slack, tmp_path, story, 0.5) as plan:
        await until(lambda: _superseded(plan) == 1, 20)
        before = restores()
        await until(lambda: restores() > before, 40)
        await publish(bootstrap, [story_report(story, n) for n in (2, 3)])
        await until(lambda: len(slack.accepted()) >= 2, 40)
        await asyncio.sleep(1.0)  # time for a wrong extra delivery to show
        assert _superseded(plan) == 1, "taken back, the partition is its own again"
    assert "partitions_given_up" in [r.getMessage() for r in caplog.records]
    assert _deliveries(slack) == {ids.revision_id(ids.alert_id(story), n): 1 for n in (1, 3)}
