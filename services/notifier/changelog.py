"""The notifier's state on Kafka: what moves with a partition of ``news.classified``.

Two compacted topics hold it, written to the same partition number as the
input the state came from (docs/kafka.md):

* ``notifier.stories``, keyed by story key: each story's record (its current
  alert, the items that made each revision, its generation), written with the
  batch's alerts, before the input is committed;
* ``notifier.ledger``, keyed ``route/alert id``: every delivery row of one alert
  on one route and what the route was last told (:mod:`.ledger`).

Both are claimed tables (:mod:`dohawatch.shared.tables`): the replica assigned a
partition claims it in both before it reads them, and a record another replica
writes there afterwards is not read. When the group assigns a partition,
:func:`restore` replaces the SQLite cache's rows of that partition with the
changelogs' (the previous owner wrote them before it let the partition go,
:meth:`.Dispatcher.drain`), so the new owner
keeps the story's alert id and revision count, and never sends again a revision
the old owner delivered. The one exception is a revision whose delivery was cut
off with the process: its answer was lost, and the resend carries the same
delivery id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from dohawatch.shared.codec import Outgoing
from dohawatch.shared.kafka import Topics
from dohawatch.shared.logs import log_event
from dohawatch.shared.settings import Settings
from dohawatch.shared.tables import REPLICA_HEADER, Row, read_table

from .ledger import DeliveryLedger
from .store import StoryStore, decode_story, encode_story
from .stories import Story

__all__ = ["Restored", "restore", "story_record"]

log = logging.getLogger("dohawatch.notifier")


def story_record(
    topic: str,
    partition: int,
    story: Story,
    replica: str,
    claim: tuple[str, bytes] | None = None,
    written: Callable[[int], None] | None = None,
) -> Outgoing:
    """The ``notifier.stories`` record of ``story``, to ``partition``, under ``claim``;
    ``written`` is told the offset the broker gave it."""
    headers = [(REPLICA_HEADER, replica.encode())]
    if claim is not None:
        headers.append(claim)
    return Outgoing(
        topic,
        story.alert.story_key.encode(),
        encode_story(story),
        headers,
        partition,
        written,
    )


@dataclass(frozen=True, slots=True)
class Restored:
    """What one restore read."""

    stories: int
    ledger_records: int
    invalid: int  # records that were neither (logged)


def _by_partition(table: dict[str, Row], partitions: set[int]) -> dict[int, dict[str, bytes]]:
    rows: dict[int, dict[str, bytes]] = {p: {} for p in partitions}
    for key, row in table.items():
        if row.value is not None:
            rows[row.partition][key] = row.value
    return rows


async def restore(
    settings: Settings,
    bootstrap: str,
    topics: Topics,
    partitions: set[int],
    store: StoryStore,
    ledger: DeliveryLedger,
) -> Restored:
    """Make the cache's rows of ``partitions`` what the changelogs hold.

    Raises:
        BrokerError: the broker could not be reached; nothing was replaced.
    """
    stories = _by_partition(
        await read_table(settings, bootstrap, topics.notifier_stories, partitions, claimed=True),
        partitions,
    )
    deliveries = _by_partition(
        await read_table(settings, bootstrap, topics.notifier_ledger, partitions, claimed=True),
        partitions,
    )
    story_count = ledger_count = invalid = 0
    for partition in sorted(partitions):
        valid = {k: v for k, v in stories[partition].items() if decode_story(v) is not None}
        store.replace_partition(partition, valid)
        skipped = ledger.replace_partition(partition, deliveries[partition])
        story_count += len(valid)
        ledger_count += len(deliveries[partition]) - skipped
        invalid += len(stories[partition]) - len(valid) + skipped
    if invalid:
        log_event(log, "changelog_invalid", level=logging.ERROR, status="skipped", records=invalid)
    return Restored(story_count, ledger_count, invalid)
