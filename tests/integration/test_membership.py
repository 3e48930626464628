"""A member that a stable group no longer lists rejoins it (shared/membership.py),
on the embedded broker; one that the group lists is left alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

from dohawatch.shared.kafka import Topics, ensure_topics, make_consumer
from dohawatch.shared.membership import Membership, keep_membership
from dohawatch.shared.settings import Settings

pytestmark = pytest.mark.integration

TOPICS = Topics.with_prefix("dohawatch.")


class Counted(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned = 0

    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned += 1


async def _member(
    settings: Settings, bootstrap: str, group: str
) -> tuple[AIOKafkaConsumer, Counted]:
    consumer = make_consumer(settings, bootstrap, group)
    listener = Counted()
    consumer.subscribe([TOPICS.raw], listener=listener)
    await consumer.start()
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while not consumer.assignment() and loop.time() < end:
        await consumer.getmany(timeout_ms=100)
    assert consumer.assignment(), "never assigned"
    return consumer, listener


async def _polled(consumer: AIOKafkaConsumer, seconds: float) -> None:
    """Poll for ``seconds``: aiokafka runs a rebalance's hooks from its poll."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await consumer.getmany(timeout_ms=100)


async def test_a_member_the_group_lists_is_left_alone_and_one_it_does_not_rejoins(
    settings: Settings, broker: Any
) -> None:
    settings = settings.model_copy(update={"kafka_check_interval_seconds": 0.5})
    await ensure_topics(settings, broker.bootstrap, TOPICS)
    mine, listener = await _member(settings, broker.bootstrap, "membership-mine")
    other, _ = await _member(settings, broker.bootstrap, "membership-other")
    try:
        # Its own group lists it: four checks, no rejoin.
        listed = Membership()
        watch = asyncio.create_task(
            keep_membership(mine, settings, broker.bootstrap, "membership-mine", listed)
        )
        await _polled(mine, 3.0)
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        assert listed.rejoins == 0
        assert listener.assigned == 1

        # Checked against a stable group that does not list it, as the embedded
        # broker's coordinator can leave a member behind: it rejoins, and the
        # rebalance assigns its partitions again.
        lost = Membership()
        watch = asyncio.create_task(
            keep_membership(mine, settings, broker.bootstrap, "membership-other", lost)
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while listener.assigned < 2 and loop.time() < end:
            await mine.getmany(timeout_ms=100)
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        assert lost.rejoins >= 1
        assert listener.assigned >= 2
        assert mine.assignment()
    finally:
        await mine.stop()
        await other.stop()
