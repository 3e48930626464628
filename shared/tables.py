"""Compacted topics as tables: one current value per key, read back whole.

A service that keeps state per partition of its input (the fetcher's feed
states, the notifier's stories and delivery ledger) writes each change to a
compacted changelog topic, to the partition number of the input it belongs
to, and reads that partition back when the group assigns it: the replica that
owned the partition before wrote the state the next owner reads
(docs/kafka.md). Nothing else decides who owns what.

A table can also be *claimed*: the replica the group assigns a partition first
appends a claim record to it (a fresh token under :data:`CLAIM_KEY`) and writes
every later record under that token (the :data:`CLAIM_HEADER` header). Reading
the partition back keeps a record only if it was written under the claim in
force where it stands, so a replica that goes on writing after another was
given its partition (a member the group left without telling it, or a batch
that outlived its revoke) never overwrites the new owner's state, and the old
owner learns of it from the claim (:class:`Claims`). This is fencing by the log
itself; the group's assignment still decides who owns what.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from .errors import BrokerError
from .kafka import client_options, read_to_high_watermarks
from .logs import log_event
from .settings import Settings

__all__ = [
    "CLAIM_HEADER",
    "CLAIM_KEY",
    "REPLICA_HEADER",
    "Claims",
    "Row",
    "check_copartitioned",
    "claimed_rows",
    "read_table",
    "replica_name",
]

log = logging.getLogger("dohawatch.tables")

REPLICA_HEADER = "dohawatch_replica"
"""The header of a changelog record that names the replica that wrote it."""
CLAIM_HEADER = "dohawatch_claim"
"""The header of a claimed table's record: the token of the claim it was written under."""
CLAIM_KEY = b"\x00claim"
"""The key of a claim record (a NUL byte first: no story, feed or route key has one)."""
CHECK_SECONDS = 30.0
"""The longest a claim, or a check of a batch's own records, may take before it is
an error."""

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Row:
    """A key's latest record in a table: its partition, value (None: a tombstone)
    and the replica that wrote it, when it says."""

    partition: int
    value: bytes | None
    replica: str | None = None


def _header(headers: Headers | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode(errors="replace")
    return None


def claimed_rows(
    records: Iterable[tuple[bytes | None, bytes | None, Headers | None]], partition: int
) -> tuple[dict[str, Row], int]:
    """The latest valid record of each key of one claimed partition, read in offset
    order, and how many records were left out for being written under a claim a
    later one had superseded. A record is valid when no claim stands before it
    (written before the table was claimed) or its token is the last claim's
    before it. Claim records themselves are no rows."""
    rows: dict[str, Row] = {}
    claim: str | None = None
    superseded = 0
    for key, value, headers in records:
        if key is None:
            continue
        if key == CLAIM_KEY:
            claim = _header(headers, CLAIM_HEADER)
            continue
        if claim is not None and _header(headers, CLAIM_HEADER) != claim:
            superseded += 1
            continue
        rows[key.decode()] = Row(partition, value, _header(headers, REPLICA_HEADER))
    return rows, superseded


async def read_table(
    settings: Settings,
    bootstrap: str,
    topic: str,
    partitions: Iterable[int] | None = None,
    *,
    claimed: bool = False,
) -> dict[str, Row]:
    """The latest record of each key of ``topic`` (of ``partitions``, or all of
    them), read to the high watermark. A ``claimed`` table keeps only the records
    its claims allow (:func:`claimed_rows`); those left out are logged.

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
            if claimed:
                rows, superseded = claimed_rows(
                    ((r.key, r.value, r.headers) for r in records), tp.partition
                )
            else:
                superseded = 0
                rows = {
                    r.key.decode(): Row(tp.partition, r.value, _header(r.headers, REPLICA_HEADER))
                    for r in records
                    if r.key is not None
                }
            if superseded:
                log_event(
                    log,
                    "changelog_superseded",
                    level=logging.WARNING,
                    status="skipped",
                    topic=topic,
                    partition=tp.partition,
                    records=superseded,
                )
            table.update(rows)
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


@dataclass(slots=True)
class _Claim:
    token: str
    checked: int  # the offset of the first record of the first table not checked yet
    superseded: bool = False  # another claim was found after it


@dataclass
class Claims:
    """This replica's claims on the partitions of some claimed tables, the first of
    which (``topics[0]``) it checks its own writes against.

    :meth:`claim` appends a new claim to every table's partition when the group
    assigns it; :meth:`header` is the header each record written for that
    partition then carries; :meth:`superseded` tells, after a batch's records
    were acknowledged, which of its partitions another claim has taken since, and
    :meth:`taken` the same of partitions it has not written to.
    """

    settings: Settings
    bootstrap: str
    topics: Sequence[str]
    replica: str
    _claims: dict[int, _Claim] = field(default_factory=dict)
    _reader: AIOKafkaConsumer | None = None
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock)
    _mine: set[str] = field(default_factory=set)  # every token this replica has claimed with

    def header(self, partition: int) -> tuple[str, bytes] | None:
        """The claim header of a record for ``partition``; None before any claim."""
        claim = self._claims.get(partition)
        return (CLAIM_HEADER, claim.token.encode()) if claim is not None else None

    def token(self, partition: int) -> str | None:
        """The token of this replica's latest claim on ``partition``."""
        claim = self._claims.get(partition)
        return claim.token if claim is not None else None

    async def claim(self, producer: AIOKafkaProducer, partitions: Iterable[int]) -> None:
        """Append a new claim to each of ``partitions`` of every table and wait for the
        broker: records another replica writes there after it are no longer read.

        Raises:
            BrokerError: a claim was not acknowledged; the partitions are not claimed.
        """
        tokens = {p: uuid.uuid4().hex for p in sorted(partitions)}
        self._mine.update(tokens.values())
        headers = [(REPLICA_HEADER, self.replica.encode())]
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                sent = {
                    (topic, p): await producer.send(
                        topic,
                        b"",
                        key=CLAIM_KEY,
                        headers=[*headers, (CLAIM_HEADER, token.encode())],
                        partition=p,
                    )
                    for topic in self.topics
                    for p, token in tokens.items()
                }
                done = {where: await future for where, future in sent.items()}
        except (KafkaError, TimeoutError) as exc:
            raise BrokerError(f"claims not acknowledged: {exc!r}") from exc
        for p, token in tokens.items():
            self._claims[p] = _Claim(token, done[(self.topics[0], p)].offset + 1)

    async def superseded(self, written: Mapping[int, tuple[str | None, int]]) -> set[int]:
        """The partitions another claim has taken from a batch that wrote, to each
        partition of ``written``, records of the first table under that claim token,
        the last of them (acknowledged) at that offset. A partition is read from
        the last check up to that record: a claim met on the way (then or at an
        earlier check), or a token this replica has since replaced (before or
        during the check), supersedes the batch there. A partition written before
        any claim (token None) has nothing to be checked against.

        Raises:
            BrokerError: the batch's records were not read back in ``CHECK_SECONDS``.
        """
        lost = {
            p
            for p, (token, _) in written.items()
            if self.token(p) != token or (token is not None and self._claims[p].superseded)
        }
        upto: dict[int, int | None] = {
            p: last
            for p, (token, last) in written.items()
            if token is not None and p not in lost and last >= self._claims[p].checked
        }
        found, reclaimed = await self._read(upto)
        return lost | found | reclaimed

    async def taken(self, partitions: Iterable[int]) -> set[int]:
        """Of ``partitions``, those another replica has claimed since this one did,
        each read from the last check to its end: what a replica that writes
        nothing to a partition learns no other way.

        Raises:
            BrokerError: a partition was not read to its end in ``CHECK_SECONDS``.
        """
        claimed = [p for p in partitions if p in self._claims]
        found = {p for p in claimed if self._claims[p].superseded}
        taken, _ = await self._read({p: None for p in claimed if p not in found})
        return found | taken

    async def _read(self, upto: Mapping[int, int | None]) -> tuple[set[int], set[int]]:
        """Read each partition of the first table from its last check up to the
        offset given (None: to its end). Returns the partitions where a claim not
        this replica's stands (marked superseded), and those this replica claimed
        anew meanwhile. One read at a time: the checks share the reader and offsets."""
        if not upto:
            return set(), set()
        async with self._reading:
            reader = await self._started()
            checking = {p: self._claims[p] for p in upto}  # a claim made meanwhile is another
            tps = {p: TopicPartition(self.topics[0], p) for p in upto}
            if set(tps.values()) - reader.assignment():
                reader.assign(sorted(set(tps.values()) | reader.assignment()))
            # Fetched only while read: a fetch left waiting at a partition's end
            # would hold up the next check's by up to fetch_max_wait_ms.
            reader.pause(*(reader.assignment() - set(tps.values())))
            for p, tp in tps.items():
                reader.seek(tp, checking[p].checked)
            reader.resume(*tps.values())
            left = dict(upto)
            lost: set[int] = set()
            reclaimed = {p for p, claim in checking.items() if self._claims.get(p) is not claim}
            try:
                async with asyncio.timeout(CHECK_SECONDS):
                    while left:
                        batches = await reader.getmany(*(tps[p] for p in left), timeout_ms=500)
                        for p in list(left):
                            claim, limit = checking[p], left[p]
                            for record in batches.get(tps[p], []):
                                if limit is not None and record.offset > limit:
                                    break
                                claim.checked = record.offset + 1
                                token = _header(record.headers, CLAIM_HEADER)
                                if record.key != CLAIM_KEY or token == claim.token:
                                    continue
                                if token in self._mine:  # this replica's newer claim
                                    reclaimed.add(p)
                                    continue
                                claim.superseded = True
                                lost.add(p)
                                break
                            end = reader.highwater(tps[p]) if limit is None else limit + 1
                            if p in lost or (end is not None and claim.checked >= end):
                                del left[p]
            except (KafkaError, TimeoutError) as exc:
                raise BrokerError(f"{self.topics[0]} was not read back: {exc!r}") from exc
            finally:
                reader.pause(*tps.values())
        reclaimed |= {p for p, claim in checking.items() if self._claims.get(p) is not claim}
        return lost, reclaimed

    async def _started(self) -> AIOKafkaConsumer:
        if self._reader is None:
            reader = AIOKafkaConsumer(
                **client_options(self.settings, self.bootstrap),
                enable_auto_commit=False,
                fetch_max_wait_ms=50,  # an empty partition is answered after this (docs/kafka.md)
            )
            try:
                await reader.start()
            except KafkaError as exc:
                with contextlib.suppress(KafkaError):
                    await reader.stop()
                raise BrokerError(f"cannot read {self.topics[0]}: {exc!r}") from exc
            self._reader = reader
        return self._reader

    async def close(self) -> None:
        """Stop the reader, if one was started."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await reader.stop()
