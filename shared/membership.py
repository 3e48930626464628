"""A group member that the group has left behind rejoins it.

The embedded broker's group coordinator can complete a rebalance without one
live member and never tell that member: its heartbeats keep succeeding, so it
keeps the partitions of its last assignment while the others share all of them
(docs/kafka.md, "the embedded broker"). Apache Kafka fences such a member itself.

:func:`keep_membership` checks, every ``kafka_check_interval_seconds``, that the
group as the broker describes it still lists this member. A member missing from a
stable group on two checks in a row asks its consumer to rejoin; the rebalance
then runs the usual hooks (revoke, commit, assign, restore). On Apache Kafka the
check never finds a member missing and costs one DescribeGroups request per check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from .kafka import client_options
from .logs import log_event
from .settings import Settings

__all__ = ["Membership", "keep_membership", "kept_membership", "listed"]

log = logging.getLogger("dohawatch.membership")

_STABLE = "Stable"
_MISSES_TO_REJOIN = 2  # one miss may be a describe racing a rebalance


@dataclass(slots=True)
class Membership:
    """What the checks found so far: misses in a row, and rejoins asked for."""

    misses: int = 0
    rejoins: int = 0


def listed(groups: list[Any], group_id: str, member_id: str) -> bool | None:
    """Whether ``member_id`` is a member of ``group_id`` in a DescribeGroups answer's
    groups (error code, group id, state, protocol type, protocol, members); None when
    the answer cannot tell (the group is rebalancing, unknown or in error)."""
    for group in groups:
        error, name, state, members = group[0], group[1], group[2], group[5]
        if name != group_id:
            continue
        if error or state != _STABLE:
            return None
        return any(member[0] == member_id for member in members)
    return None


async def keep_membership(
    consumer: AIOKafkaConsumer,
    settings: Settings,
    bootstrap: str,
    group_id: str,
    found: Membership | None = None,
) -> None:
    """Until cancelled, ask ``consumer`` to rejoin when a stable ``group_id`` stops
    listing it. A failed describe is skipped: the broker's reachability is watched
    elsewhere (:mod:`.watch`)."""
    found = found or Membership()
    interval = settings.kafka_check_interval_seconds
    admin: AIOKafkaAdminClient | None = None
    this = asyncio.current_task()
    try:
        while True:
            if this is not None and this.cancelling():
                # A cancel an await swallowed (Python 3.11's wait_for does, inside
                # aiokafka too): without this the check would go on for good.
                raise asyncio.CancelledError
            await asyncio.sleep(interval)
            coordinator = consumer._coordinator  # aiokafka keeps its group state there
            member_id = getattr(coordinator, "member_id", "")
            if not member_id or not consumer.assignment():
                found.misses = 0
                continue  # not in a group yet, or between generations
            try:
                async with asyncio.timeout(interval):
                    if admin is None:
                        admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
                        await admin.start()
                    answers = await admin.describe_consumer_groups([group_id])
            except (KafkaError, TimeoutError):
                if admin is not None:
                    await admin.close()
                    admin = None
                continue
            status = listed([g for a in answers for g in a.groups], group_id, member_id)
            if status is None or status:
                found.misses = 0
                continue
            found.misses += 1
            if found.misses >= _MISSES_TO_REJOIN:
                found.misses = 0
                found.rejoins += 1
                log_event(
                    log,
                    "group_membership_lost",
                    level=logging.WARNING,
                    status="rejoining",
                    group=group_id,
                    member=member_id,
                )
                coordinator.request_rejoin()
    finally:
        if admin is not None:
            await admin.close()


@contextlib.asynccontextmanager
async def kept_membership(
    consumer: AIOKafkaConsumer, settings: Settings, bootstrap: str, group_id: str
) -> AsyncIterator[None]:
    """Run :func:`keep_membership` for ``consumer`` while the block runs."""
    task = asyncio.create_task(
        keep_membership(consumer, settings, bootstrap, group_id), name=f"{group_id}-membership"
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
