"""Compacted topics as tables: one current value per key, read back whole.

A service that keeps state per partition of its input (the fetcher's feed
states, the notifier's stories and delivery ledger) writes each change to a
compacted changelog topic, to the partition number of the input it belongs
to, and reads that partition back when the group assigns it: the replica that
owned the partition before wrote the state the next owner reads
(docs/kafka.md). Nothing else decides who owns what.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from .errors import BrokerError
from .kafka import client_options, read_to_high_watermarks
from .settings import Settings

__all__ = ["REPLICA_HEADER", "Row", "check_copartitioned", "read_table", "replica_name"]

REPLICA_HEADER = "dohawatch_replica"
"""The header of a changelog record that names the replica that wrote it."""


@dataclass(frozen=True, slots=True)
class Row:
    """A key's latest record in a table: its partition, value (None: a tombstone)
    and the replica that wrote it, when it says."""

    partition: int
    value: bytes | None
    replica: str | None = None


async def read_table(
    settings: Settings, bootstrap: str, topic: str, partitions: Iterable[int] | None = None
) -> dict[str, Row]:
    """The latest record of each key of ``topic`` (of ``partitions``, or all of
    them), read to the high watermark.

    Raises:
        BrokerError: the broker could not be reached.
    """
    consumer = AIOKafkaConsumer(
        **client_options(settings, bootstrap),
        enable_auto_commit=False,
        fetch_max_wait_ms=50,  # an empty partition is answered after this (docs/kafka.md)
    )
    table: dict[str, Row] = {}
    try:
        await consumer.start()
        await consumer.topics()
        numbers = consumer.partitions_for_topic(topic) or set()
        wanted = sorted(numbers if partitions is None else set(partitions) & numbers)
        if not wanted:
            return table
        tps = [TopicPartition(topic, p) for p in wanted]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp, records in (await read_to_high_watermarks(consumer, tps)).items():
            for record in records:
                if record.key is not None:
                    replica = dict(record.headers or ()).get(REPLICA_HEADER)
                    table[record.key.decode()] = Row(
                        tp.partition, record.value, replica.decode() if replica else None
                    )
    except KafkaError as exc:
        raise BrokerError(f"cannot read {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()
    return table


async def check_copartitioned(
    settings: Settings, bootstrap: str, source: str, tables: Iterable[str]
) -> None:
    """Check that each of ``tables`` has a partition for every partition of ``source``
    (a changelog record goes to its input's partition number).

    Raises:
        BrokerError: the broker could not be reached, or a table has too few
            partitions; the message says which and how many it needs.
    """
    consumer = AIOKafkaConsumer(**client_options(settings, bootstrap), enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer.topics()
        wanted = len(consumer.partitions_for_topic(source) or ())
        for table in tables:
            has = len(consumer.partitions_for_topic(table) or ())
            if has < wanted:
                raise BrokerError(
                    f"{table} has {has} partitions, fewer than the {wanted} of {source}: "
                    f"add partitions to {table} until it has {wanted} (docs/kafka.md)"
                )
    except KafkaError as exc:
        raise BrokerError(f"cannot read the partitions of {source}: {exc!r}") from exc
    finally:
        await consumer.stop()


def replica_name(settings: Settings, service: str) -> str:
    """The client id a replica of ``service`` goes by: it names the host (the
    pod, in Kubernetes) and the process, for ``dohawatch feeds list`` and the
    changelog's ``dohawatch_replica`` header."""
    return f"{settings.kafka_client_id}-{service}@{socket.gethostname()}:{os.getpid()}"
