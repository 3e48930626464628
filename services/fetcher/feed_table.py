"""The feed list as a table on Kafka, and which feeds a fetcher replica polls.

Two compacted topics, keyed by the feed's configured URL and so partitioned
alike (docs/kafka.md):

* ``feeds`` holds each feed's configuration (``FeedConfig`` as JSON); a
  tombstone removes a feed. ``dohawatch feeds sync FILE`` writes it, and so
  does a fetcher started with a configuration file, and again on SIGHUP.
* ``fetcher.state`` is the changelog of each feed's state (validators, seen
  ids, next poll, failures, moved URL), written after every poll beside the
  local SQLite cache.

Fetcher replicas share the feeds through one consumer group on ``feeds``: a
replica polls the feeds of the partitions assigned to it and no others. When
a partition is assigned, the replica first reads that partition of the
changelog into its cache (the state its previous owner last wrote), then reads
the partition's feeds from the beginning and starts polling them; when a
partition is revoked, its feeds' loops are stopped and the changelog writes
still buffered are flushed before the partition goes to its next owner. A poll
cut short by the revoke wrote no state, so the next owner polls again with the
validators from before it, and republishes what it had found under the same
item ids.

Nothing here elects a leader or locks anything: the group's assignment is the
only thing that says who polls what. The group never commits offsets: the feed
table is read from the beginning on every assignment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.errors import BrokerError
from dohawatch.shared.kafka import Topics, client_options
from dohawatch.shared.settings import Settings
from dohawatch.shared.tables import read_table

from .core import FeedState

__all__ = [
    "GROUP_ID",
    "SyncResult",
    "decode_feed",
    "decode_state",
    "encode_feed",
    "encode_state",
    "partition_owners",
    "sync_feeds",
]

GROUP_ID = "dohawatch-fetcher"

_STATE: TypeAdapter[FeedState] = TypeAdapter(FeedState)


def encode_feed(feed: FeedConfig) -> bytes:
    """A ``feeds`` record's value."""
    return feed.model_dump_json().encode()


def decode_feed(value: bytes) -> FeedConfig | None:
    """The feed of a ``feeds`` record; None for a value that is no feed (logged by the caller)."""
    try:
        return FeedConfig.model_validate_json(value)
    except ValidationError:
        return None


def encode_state(state: FeedState) -> bytes:
    """A ``fetcher.state`` record's value: every field of the state, as JSON."""
    return _STATE.dump_json(state)


def decode_state(value: bytes) -> FeedState | None:
    """The state of a ``fetcher.state`` record; None for a value that is no state."""
    try:
        return _STATE.validate_json(value)
    except ValidationError:
        return None


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a sync wrote: feeds added or changed, and feeds removed."""

    written: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int


async def sync_feeds(
    settings: Settings, bootstrap: str, topics: Topics, feeds: Iterable[FeedConfig]
) -> SyncResult:
    """Make the ``feeds`` table hold exactly ``feeds``: write the new and changed
    ones, tombstone the others (and their state in the changelog).

    Raises:
        BrokerError: the broker could not be reached or did not acknowledge.
    """
    wanted = {f.url: encode_feed(f) for f in feeds}
    table = await read_table(settings, bootstrap, topics.feeds)
    current = {url: row.value for url, row in table.items() if row.value is not None}
    written = [url for url, value in wanted.items() if current.get(url) != value]
    removed = sorted(set(current) - set(wanted))
    if written or removed:
        producer = AIOKafkaProducer(**client_options(settings, bootstrap), acks="all")
        try:
            await producer.start()
            sends: list[Any] = [
                await producer.send(topics.feeds, wanted[url], key=url.encode()) for url in written
            ]
            for url in removed:
                sends.append(await producer.send(topics.feeds, None, key=url.encode()))
                sends.append(await producer.send(topics.fetcher_state, None, key=url.encode()))
            for sent in sends:
                await sent
        except KafkaError as exc:
            raise BrokerError(f"cannot write {topics.feeds}: {exc!r}") from exc
        finally:
            await producer.stop()
    return SyncResult(tuple(written), tuple(removed), len(wanted) - len(written))


async def partition_owners(settings: Settings, bootstrap: str, topic: str) -> dict[int, str]:
    """Partition of ``topic`` -> the fetcher replica the group assigned it to (its
    client id, which names its host and process); empty when the group is not
    running or the broker cannot describe it.

    Raises:
        BrokerError: the broker could not be reached.
    """
    admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
    try:
        await admin.start()
        described = await admin.describe_consumer_groups([GROUP_ID])
    except KafkaError as exc:
        raise BrokerError(f"cannot describe group {GROUP_ID}: {exc!r}") from exc
    finally:
        await admin.close()
    owners: dict[int, str] = {}
    for response in described:
        for group in response.groups:
            for member in group[5]:  # member_id, client_id, client_host, metadata, assignment
                if not member[4]:
                    continue
                assignment = ConsumerProtocolMemberAssignment.decode(member[4])
                for name, partitions in assignment.assignment:
                    if name == topic:
                        owners.update(dict.fromkeys(partitions, member[1]))
    return owners
