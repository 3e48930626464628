"""Kafka clients for every service: topic names, factories and topic creation.

Everything that differs between Apache Kafka and the embedded broker is a
setting here (``Settings.kafka_idempotence``), never a code fork.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from .errors import BrokerError
from .logs import log_event
from .settings import Settings

__all__ = [
    "Topics",
    "client_options",
    "ensure_topics",
    "make_consumer",
    "make_producer",
    "positions",
    "read_from_start",
    "read_to_high_watermark",
    "read_to_high_watermarks",
]

log = logging.getLogger("dohawatch.kafka")

QUIET_SECONDS = 10.0  # nothing read from a partition short of its watermark for this long: an error

# Kafka error code 36: the topic exists already, which is what we want.
_TOPIC_ALREADY_EXISTS = 36
# A table keeps each key's latest value (and a tombstone's key, for a day).
_COMPACTED = {"cleanup.policy": "compact"}


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic names under one prefix (docs/kafka.md): four for the pipeline's
    events, two compacted tables the fetchers share and two the notifiers keep
    their state in."""

    raw: str
    classified: str
    alerts: str
    deadletter: str
    feeds: str
    fetcher_state: str
    notifier_stories: str
    notifier_ledger: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        """Names with ``prefix`` in front, e.g. ``dohawatch.news.raw``."""
        return cls(
            f"{prefix}news.raw",
            f"{prefix}news.classified",
            f"{prefix}alerts",
            f"{prefix}deadletter",
            f"{prefix}feeds",
            f"{prefix}fetcher.state",
            f"{prefix}notifier.stories",
            f"{prefix}notifier.ledger",
        )

    def all(self) -> tuple[str, ...]:
        """The event topics, in pipeline order (the contract in ``schemas/``)."""
        return (self.raw, self.classified, self.alerts, self.deadletter)

    def tables(self) -> tuple[str, ...]:
        """The compacted topics that hold one current value per key."""
        return (self.feeds, self.fetcher_state, self.notifier_stories, self.notifier_ledger)


def client_options(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """Connection options shared by producers, consumers and the admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile),
                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            )
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return options


def make_producer(settings: Settings, bootstrap: str) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas and batches for 5 ms.

    aiokafka holds one batch per partition and makes ``send`` wait while it is
    full, so its 16 KiB default paced a classifier batch of 500 messages (about
    1.1 MB) as some 70 round trips; 512 KiB makes it two or three.
    """
    return AIOKafkaProducer(
        **client_options(settings, bootstrap),
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
        enable_idempotence=settings.kafka_idempotence,
    )


def make_consumer(
    settings: Settings, bootstrap: str, group_id: str, *topics: str
) -> AIOKafkaConsumer:
    """A group consumer with manual commits, reading from the earliest offset.

    Offsets are committed by :func:`dohawatch.shared.at_least_once.run_pipeline` only
    after the outputs of a batch are acknowledged (at least once).
    """
    return AIOKafkaConsumer(
        *topics,
        **client_options(settings, bootstrap),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 10),
        rebalance_timeout_ms=settings.kafka_rebalance_timeout_ms,
    )


async def ensure_topics(settings: Settings, bootstrap: str, topics: Topics) -> None:
    """Create the pipeline's topics if they do not exist.

    Raises:
        BrokerError: the broker could not be reached or refused to create one.
    """
    admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
    partitions, replicas = settings.topic_partitions, settings.topic_replication_factor
    try:
        await admin.start()
        response = await admin.create_topics(
            [NewTopic(name, partitions, replicas) for name in topics.all()]
            + [
                NewTopic(name, partitions, replicas, topic_configs=_COMPACTED)
                for name in topics.tables()
            ]
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {bootstrap}: {exc}") from exc
    finally:
        await admin.close()
    for name, code, message in response.topic_errors:
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            raise BrokerError(f"cannot create topic {name}: error {code} {message}")


async def read_to_high_watermarks(
    consumer: AIOKafkaConsumer,
    tps: Iterable[TopicPartition],
    quiet_seconds: float = QUIET_SECONDS,
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """The records of each of ``tps`` from its position to the high watermark of
    its first fetch, all read together. The watermark comes from fetch responses:
    ``end_offsets()`` answers wrongly on the embedded broker (docs/kafka.md).

    Raises:
        BrokerError: a partition was not read to its watermark because nothing came
            for ``quiet_seconds``. A part of a partition is never returned as all of
            it: state restored from it would be older than the input it resumes.
    """
    records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {tp: [] for tp in tps}
    ends: dict[TopicPartition, int] = {}
    at: dict[TopicPartition, int] = {}  # positions, where the watermark is known
    left = set(records)
    loop = asyncio.get_running_loop()
    last_read = loop.time()
    while left:
        batches = await consumer.getmany(*left, timeout_ms=500)
        for tp in sorted(left):
            if tp not in ends and (high := consumer.highwater(tp)) is not None:
                ends[tp] = high
            end = ends.get(tp)
            records[tp] += [r for r in batches.get(tp, []) if end is None or r.offset < end]
            if end is not None:
                at[tp] = await consumer.position(tp)
                if at[tp] >= end:
                    left.discard(tp)
        if batches:
            last_read = loop.time()
        elif left and loop.time() - last_read >= quiet_seconds:
            unread = ", ".join(
                f"{tp.topic}[{tp.partition}] at {at.get(tp, '?')} of {ends.get(tp, '?')}"
                for tp in sorted(left)
            )
            raise BrokerError(f"nothing read for {quiet_seconds:g} s short of the end: {unread}")
    return records


async def read_to_high_watermark(
    consumer: AIOKafkaConsumer, tp: TopicPartition
) -> list[ConsumerRecord[bytes, bytes]]:
    """:func:`read_to_high_watermarks` of one partition."""
    return (await read_to_high_watermarks(consumer, [tp]))[tp]


async def positions(consumer: AIOKafkaConsumer) -> list[tuple[TopicPartition, int, int]]:
    """Each assigned partition with the consumer's position and the high watermark,
    where both are known. The watermark comes from fetch responses (right on both
    brokers; ``end_offsets()`` is wrong on the embedded one, docs/kafka.md); the
    position may wait for the group coordinator, so each is bounded to a second,
    and a broker that went away cannot hold its caller here."""
    found = []
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            position = await asyncio.wait_for(consumer.position(tp), 1.0)
        except (TimeoutError, KafkaError):
            continue
        found.append((tp, position, high))
    return found


async def read_from_start(
    consumer: AIOKafkaConsumer, tp: TopicPartition, position: int, high: int
) -> None:
    """Read ``tp`` again from its start, loudly: the consumer's ``position`` is past
    the log's end ``high``, so the broker lost the partition's data (an in-memory
    broker restarted, a topic recreated). Waiting for the log to grow past the old
    position would skip everything before it."""
    log_event(
        log,
        "offsets_reset",
        level=logging.ERROR,
        status="past-log-end",
        topic=tp.topic,
        partition=tp.partition,
        position=position,
        log_end=high,
    )
    await consumer.seek_to_beginning(tp)
