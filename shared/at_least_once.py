"""The at-least-once loop every consuming service runs; the commit rule lives here.

    poll a batch → decode (undecodable → dead letter) → handler decides
    → produce outputs → await every acknowledgement → handler.acknowledged()
    → commit the next offset of each partition

A crash anywhere before the commit replays the batch; outputs carry
deterministic ids, so the replay produces the same messages.

A rebalance runs beside the loop (aiokafka's coordinator task), so a partition
can be revoked while its batch is being processed. The revoke hook waits for
that batch (up to ``revoke_wait_seconds``, less than the group's rebalance
timeout, so the member is not thrown out meanwhile) and commits it: work in flight is
finished and committed before the partition's next owner starts. A batch that
takes longer is left uncommitted for those partitions and replayed by their
next owner. A handler that keeps state per partition is told which partitions
it lost (after the commit) and which it gained; no batch is processed until
those hooks have run (aiokafka fetches a new assignment meanwhile), and none
with records of partitions this member no longer holds. A handler can also give
partitions up between rebalances (the notifier does when another replica has
claimed them, shared/tables.py): their batch is not committed, their records
are no longer handled, and the member asks the group for a new assignment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import (
    CommitFailedError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import BaseModel

from .codec import Outgoing, decode, header
from .errors import BrokerError, DecodeError
from .kafka import positions, read_from_start
from .logs import log_event
from .metrics import PipelineMetrics

__all__ = [
    "BatchHandler",
    "PartitionedHandler",
    "SupersededHandler",
    "deadletter",
    "produce_and_wait",
    "run_pipeline",
]

T = TypeVar("T", bound=BaseModel)
T_contra = TypeVar("T_contra", bound=BaseModel, contravariant=True)
log = logging.getLogger("dohawatch.pipeline")


class BatchHandler(Protocol[T_contra]):
    """What a service plugs into :func:`run_pipeline`."""

    async def handle(self, events: Sequence[T_contra], partitions: Sequence[int]) -> list[Outgoing]:
        """Decide on a batch of decoded events (``partitions[i]`` is the input
        partition of ``events[i]``) and return the messages to produce."""
        ...

    async def acknowledged(self) -> None:
        """Called after the broker acknowledged the batch's outputs, before the commit."""
        ...


@runtime_checkable
class PartitionedHandler(Protocol):
    """A handler whose state is kept per input partition (the notifier's stories)."""

    async def assigned(self, partitions: set[int]) -> None:
        """Load the state of ``partitions`` before their first batch."""
        ...

    async def revoked(self, partitions: set[int]) -> None:
        """Finish with ``partitions``: their offsets are committed; their state must
        be where the next owner reads it when this returns."""
        ...


@runtime_checkable
class SupersededHandler(Protocol):
    """A handler that can find partitions taken from it without a rebalance."""

    def superseded(self) -> set[int]:
        """Input partitions given up since the last call (asked after each batch is
        acknowledged, and between batches): their batch must not be committed."""
        ...


DEADLETTER_BODY_BYTES = 64 * 1024
"""The most of a poison message's body a dead letter carries: enough to see what
it was, small enough that the dead letter itself always fits the broker's limit."""


def _bounded(
    topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> Outgoing:
    """A dead letter to ``topic`` carrying at most ``DEADLETTER_BODY_BYTES`` of
    ``value``, with its full size (and ``dlq_truncated`` when it was cut)."""
    size = len(value) if value is not None else 0
    headers = [*headers, ("dlq_size", str(size).encode())]
    if value is not None and size > DEADLETTER_BODY_BYTES:
        headers.append(("dlq_truncated", b"true"))
        value = value[:DEADLETTER_BODY_BYTES]
    return Outgoing(topic, key, value, headers)


def deadletter(
    record: ConsumerRecord[bytes | None, bytes | None],
    topic: str,
    service: str,
    error: DecodeError,
) -> Outgoing:
    """The dead-letter message for ``record``: its key, the first
    ``DEADLETTER_BODY_BYTES`` of its body and its headers, plus why and where it
    came from. A null key or body stays null."""
    return _bounded(
        topic,
        record.key,
        record.value,
        [
            *(record.headers or ()),
            ("dlq_reason", error.reason.encode()),
            ("dlq_detail", error.detail[:500].encode()),
            ("dlq_service", service.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
        ],
    )


SHUTDOWN_COMMIT_SECONDS = 5.0
"""The bound on the commit a stopping service makes (its offsets are replayed if it fails)."""
BROKER_TIMEOUT_SECONDS = 60.0
"""The longest any one broker call (a batch's sends, a commit) may take before the
service gives up on it: a broker that is gone must not hang a service for good."""


_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


def too_large(message: Outgoing, topic: str, service: str, error: Exception) -> Outgoing:
    """The dead letter for an output the broker or the producer refused for its size:
    its first ``DEADLETTER_BODY_BYTES``, and the topic it was meant for."""
    return _bounded(
        topic,
        message.key,
        message.value,
        [
            *message.headers,
            ("dlq_reason", b"too-large"),
            ("dlq_detail", str(error)[:500].encode()),
            ("dlq_service", service.encode()),
            ("dlq_topic", message.topic.encode()),
        ],
    )


async def produce_and_wait(
    producer: AIOKafkaProducer,
    messages: Sequence[Outgoing],
    bound_seconds: float = BROKER_TIMEOUT_SECONDS,
    *,
    deadletter_topic: str | None = None,
    service: str = "",
) -> int:
    """Send every message, then wait until the broker acknowledged all of them; a
    message's ``written`` is told the offset it got.

    Sends are not awaited one by one: the producer batches them (awaiting each
    send costs 10-100x, docs/performance.md). With ``deadletter_topic``, a
    message refused for its size is dead-lettered alone (:func:`too_large`)
    and the others go on: one oversized output never fails its batch.

    Returns:
        How many messages were dead-lettered for their size.

    Raises:
        BrokerError: a send failed otherwise or took longer than ``bound_seconds``;
            nothing may be committed.
    """

    async def send(message: Outgoing) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await producer.send(
            message.topic,
            message.value,
            key=message.key,
            headers=message.headers,
            partition=message.partition,
        )
        return future

    async def send_all() -> int:
        dead: list[Outgoing] = []  # what went to the dead-letter topic instead

        def refuse(message: Outgoing, exc: Exception) -> Outgoing:
            if deadletter_topic is None:
                raise exc
            dead.append(too_large(message, deadletter_topic, service, exc))
            return dead[-1]

        pending: list[tuple[Outgoing, asyncio.Future[Any]]] = []
        for message in messages:
            try:
                pending.append((message, await send(message)))
            except _TOO_LARGE as exc:  # over the producer's max_request_size
                letter = refuse(message, exc)
                pending.append((letter, await send(letter)))
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        later = []
        for (message, _), result in zip(pending, results, strict=True):
            if isinstance(result, _TOO_LARGE):  # over the broker's message.max.bytes
                later.append(await send(refuse(message, result)))
            elif isinstance(result, BaseException):
                raise result
            elif message.written is not None:
                message.written(result.offset)
        await asyncio.gather(*later)
        for letter in dead:
            log_event(
                log,
                "deadlettered",
                level=logging.ERROR,
                status="too-large",
                topic=header(letter.headers, "dlq_topic"),
                size_bytes=header(letter.headers, "dlq_size"),
            )
        return len(dead)

    try:
        # asyncio.timeout, not wait_for: in Python 3.11 wait_for swallows a cancel
        # that arrives as the sends complete, and a revoked loop would go on.
        async with asyncio.timeout(bound_seconds):
            return await send_all()
    except KafkaError as exc:
        raise BrokerError(f"produce failed: {exc}") from exc
    except TimeoutError as exc:
        raise BrokerError(f"produce not acknowledged within {bound_seconds:g} s") from exc


class _Offsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks acknowledged offsets and commits them, and hands partitions over on
    a rebalance (see the module doc)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        handler: object,
        metrics: PipelineMetrics,
        revoke_wait_seconds: float,
    ) -> None:
        self._consumer = consumer
        self._revoke_wait = revoke_wait_seconds
        self._handler = handler if isinstance(handler, PartitionedHandler) else None
        self._metrics = metrics
        self.assigned: set[TopicPartition] = set()
        self.pending: dict[TopicPartition, int] = {}
        self.revoked: set[TopicPartition] = set()  # lost while their batch was in flight
        self.settled = asyncio.Event()  # set once a rebalance's hooks have all run
        self.in_flight: asyncio.Future[None] | None = None

    async def commit(self, bound_seconds: float = BROKER_TIMEOUT_SECONDS) -> None:
        """Commit the acknowledged offsets, within ``bound_seconds``.

        Raises:
            BrokerError: the broker refused the commit for another reason than a
                rebalance (a topic it no longer has), or did not answer in time.
                The offsets stay pending; a restarted service replays from the
                last commit, which at-least-once delivery makes safe.
        """
        if not self.pending:
            return
        offsets = dict(self.pending)
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), bound_seconds)
        except CommitFailedError as exc:
            # A rebalance took the partitions away; their new owner replays from
            # the last commit, and deterministic ids make that replay harmless.
            log_event(log, "commit_failed", status="rebalanced", error=str(exc))
        except (KafkaError, TimeoutError) as exc:
            log_event(log, "commit_failed", level=logging.ERROR, status="error", error=repr(exc))
            raise BrokerError(f"offset commit failed: {exc!r}") from exc
        for tp, offset in offsets.items():
            if self.pending.get(tp) == offset:
                del self.pending[tp]

    def give_up(self, tps: set[TopicPartition]) -> None:
        """Stop handling and committing ``tps`` (the handler found them claimed by
        another member) and ask the group to rejoin: the new assignment decides."""
        self.revoked |= tps
        for tp in tps:
            self.pending.pop(tp, None)
        self.assigned -= tps
        self._counted("given_up", tps)
        self._consumer._coordinator.request_rejoin()  # aiokafka keeps its group state there

    def acknowledged(self, tp: TopicPartition, offset: int) -> None:
        """Mark ``tp`` processed up to ``offset`` (exclusive), unless it was revoked
        before its batch finished: then its next owner replays it."""
        if tp not in self.revoked:
            self.pending[tp] = offset

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.settled.clear()
        lost = set(revoked)
        if self.in_flight is not None and not self.in_flight.done():
            await asyncio.wait([self.in_flight], timeout=self._revoke_wait)
            if not self.in_flight.done():
                self.revoked |= lost  # its offsets for these partitions are never committed
                log_event(
                    log,
                    "revoke_unfinished",
                    level=logging.WARNING,
                    status="replayed",
                    partitions=",".join(str(tp.partition) for tp in sorted(lost)),
                )
        with contextlib.suppress(BrokerError):  # logged by commit; the next owner replays
            await self.commit()
        for tp in lost:  # no longer ours to commit, whatever happened
            self.pending.pop(tp, None)
        if self._handler is not None and lost:
            await self._handler.revoked({tp.partition for tp in lost})
        self.assigned -= lost
        self._counted("revoked", lost)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        gained = set(assigned)
        self.revoked -= gained
        if self._handler is not None and gained:
            await self._handler.assigned({tp.partition for tp in gained})
        self.assigned |= gained
        self._counted("assigned", gained)
        self.settled.set()

    def _counted(self, change: str, tps: set[TopicPartition]) -> None:
        for topic in {tp.topic for tp in tps}:
            self._metrics.rebalances.labels(topic, change).inc(
                sum(1 for tp in tps if tp.topic == topic)
            )
            self._metrics.partitions.labels(topic).set(
                sum(1 for tp in self.assigned if tp.topic == topic)
            )
        log_event(
            log,
            f"partitions_{change}",
            status="ok",
            partitions=",".join(str(tp.partition) for tp in sorted(tps)),
            owned=",".join(str(tp.partition) for tp in sorted(self.assigned)),
        )


class _Loop(Generic[T]):
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        *,
        service: str,
        model: type[T],
        handler: BatchHandler[T],
        deadletter_topic: str,
        metrics: PipelineMetrics,
        revoke_wait_seconds: float,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.service = service
        self.model = model
        self.handler = handler
        self.deadletter_topic = deadletter_topic
        self.metrics = metrics
        self.offsets = _Offsets(consumer, handler, metrics, revoke_wait_seconds)

    async def run(self, topics: Sequence[str], stop: asyncio.Event, max_records: int) -> None:
        self.consumer.subscribe(list(topics), listener=self.offsets)
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=200, max_records=max_records)
            if batches:
                batches = await self._owned(batches, stop)
            if batches and not await self._process_or_abandon(batches, stop):
                break
            self._give_up_superseded()  # found between batches too
            await self._observe_lag()
        # The last commit on the way out: quick, so a stop completes with the broker gone.
        with contextlib.suppress(BrokerError):
            await self.offsets.commit(SHUTDOWN_COMMIT_SECONDS)

    async def _owned(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], stop: asyncio.Event
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """``batches`` once the last rebalance's hooks have run, without the records of
        partitions this member no longer holds. aiokafka fetches a new assignment's
        partitions while ``on_partitions_assigned`` still runs, so a batch may arrive
        before a handler has read its partitions' state."""
        if not self.offsets.settled.is_set():
            settled = asyncio.ensure_future(self.offsets.settled.wait())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([settled, stopping], return_when=asyncio.FIRST_COMPLETED)
            settled.cancel()
            stopping.cancel()
        if stop.is_set():
            return {}
        return {tp: records for tp, records in batches.items() if tp in self.offsets.assigned}

    async def _process_or_abandon(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], stop: asyncio.Event
    ) -> bool:
        """Process a batch; if ``stop`` comes meanwhile, give it ``SHUTDOWN_COMMIT_SECONDS``
        and then abandon it uncommitted (its input is read again after the restart).
        False when abandoned."""
        work = asyncio.ensure_future(self._process(batches))
        self.offsets.in_flight = work  # before any await: a revoke must see it
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([work, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                await asyncio.wait([work], timeout=SHUTDOWN_COMMIT_SECONDS)
        finally:
            stopping.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            log_event(log, "batch_abandoned", level=logging.WARNING, status="stopping")
            return False
        work.result()  # a BrokerError, or the unexpected, goes on up
        return True

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        started = time.perf_counter()
        events: list[T] = []
        partitions: list[int] = []
        outputs: list[Outgoing] = []
        for tp, records in batches.items():
            self.metrics.consumed.labels(tp.topic).inc(len(records))
            for record in records:
                try:
                    events.append(decode(record.value, record.headers, self.model))
                    partitions.append(tp.partition)
                except DecodeError as exc:
                    self.metrics.deadletters.labels(tp.topic, exc.reason).inc()
                    log_event(
                        log,
                        "deadlettered",
                        status=exc.reason,
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        detail=exc.detail,
                    )
                    outputs.append(deadletter(record, self.deadletter_topic, self.service, exc))
        if events:
            outputs.extend(await self.handler.handle(events, partitions))
        await produce_and_wait(
            self.producer, outputs, deadletter_topic=self.deadletter_topic, service=self.service
        )
        for message in outputs:
            self.metrics.produced.labels(message.topic).inc()
        await self.handler.acknowledged()
        self._give_up_superseded()
        for tp, records in batches.items():
            self.offsets.acknowledged(tp, records[-1].offset + 1)
        await self.offsets.commit()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _give_up_superseded(self) -> None:
        """Give up the partitions the handler found another member holds."""
        if isinstance(self.handler, SupersededHandler) and (lost := self.handler.superseded()):
            self.offsets.give_up({tp for tp in self.offsets.assigned if tp.partition in lost})

    async def _observe_lag(self) -> None:
        for tp, position, high in await positions(self.consumer):
            if position > high:
                await read_from_start(self.consumer, tp, position, high)
                self.metrics.offset_resets.labels(tp.topic).inc()
                self.offsets.pending.pop(tp, None)
                position = 0
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - position))


async def run_pipeline(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    *,
    service: str,
    topics: Sequence[str],
    model: type[T],
    handler: BatchHandler[T],
    deadletter_topic: str,
    metrics: PipelineMetrics,
    stop: asyncio.Event,
    max_records: int = 2000,
    revoke_wait_seconds: float = 8.0,
) -> None:
    """Consume ``topics`` until ``stop`` is set, at least once (see module docstring).
    ``revoke_wait_seconds`` bounds a revoke's wait for the batch in flight; keep it
    under the consumer's rebalance timeout.

    The consumer and producer must be started; they are not stopped here.

    Raises:
        BrokerError: producing failed; the batch was not committed and will be
            replayed by whoever owns the partitions next.
    """
    loop = _Loop(
        consumer,
        producer,
        service=service,
        model=model,
        handler=handler,
        deadletter_topic=deadletter_topic,
        metrics=metrics,
        revoke_wait_seconds=revoke_wait_seconds,
    )
    await loop.run(topics, stop, max_records)
