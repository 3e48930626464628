"""The notifier's state written as changelog records and read back: the same
stories and ledger rows, under the same partition, and nothing else of it
(services/notifier/changelog.py, ledger.py, store.py)."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from dohawatch.notifier.delivery import DeliveryMetrics, DeliveryPolicy, Dispatcher
from dohawatch.notifier.ledger import DeliveryLedger, Pending, ledger_key
from dohawatch.notifier.store import StoryStore, decode_story, encode_story
from dohawatch.notifier.stories import Story
from dohawatch.notifier.wiring import Route
from dohawatch.shared.config_file import RouteConfig
from dohawatch.shared.events import Alert, Severity
from tests.factories import until

from .test_delivery_queue import RecordingSink
from .test_routes import alert

ROUTES = ("slack", "email")
WHEN = 1_753_380_000.0


def revision(alert_id: str, number: int, outlets: int = 1) -> Alert:
    a = alert(outlets=outlets, revision=number)
    return a.model_copy(update={"alert_id": alert_id, "story_key": f"st-{alert_id}"})


stories = st.builds(
    lambda items, generation, tags, base, n: Story(
        revision("al1-s", n), items, generation, frozenset(tags), base
    ),
    st.dictionaries(st.text(min_size=1, max_size=12), st.integers(1, 50), max_size=6),
    st.integers(1, 9),
    st.sets(st.text(max_size=8), max_size=4),
    st.none() | st.sampled_from(list(Severity)),
    st.integers(1, 20),
)


@given(stories)
def test_a_story_record_reads_back_as_the_story_that_wrote_it(story: Story) -> None:
    assert decode_story(encode_story(story)) == story


def test_a_value_that_is_no_story_is_refused() -> None:
    assert decode_story(b'{"alert": 3}') is None
    assert decode_story(b"\xff") is None


def test_replacing_a_partition_of_stories_keeps_the_others(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "n.sqlite3")
    kept, stale, moved = (Story(revision(f"al1-{n}", 1)) for n in ("kept", "stale", "moved"))
    store.put_many([(0, kept), (1, stale)])
    store.replace_partition(1, {moved.alert.story_key: encode_story(moved)})
    assert store.get(kept.alert.story_key) == kept
    assert store.get(stale.alert.story_key) is None, "the changelog outranks the cache"
    assert store.get(moved.alert.story_key) == moved
    store.close()


# One ledger operation: (route, alert, partition, action, outlets); partition is
# the alert's own, so one alert never spans two.
operations = st.lists(
    st.tuples(
        st.sampled_from(ROUTES),
        st.integers(0, 3),
        st.sampled_from(["enqueue", "done", "retry", "dead"]),
        st.integers(1, 4),
    ),
    max_size=25,
)


def _apply(ledger: DeliveryLedger, ops: list[tuple[str, int, str, int]]) -> None:
    revisions: dict[tuple[str, int], int] = {}
    for step, (route, n, action, outlets) in enumerate(ops):
        alert_id = f"al1-{n}"
        if action == "enqueue":
            number = revisions.get((route, n), 0) + 1
            revisions[(route, n)] = number
            ledger.enqueue(
                route,
                revision(alert_id, number, outlets),
                "new" if number == 1 else "update",
                partition=n % 2,
                fetched_at=WHEN,
                now=WHEN + step,
                due=WHEN + step,
            )
            continue
        pending = ledger.pending_for(route, alert_id)
        if not pending:
            continue
        if action == "retry":
            ledger.retry_later(pending[:1], WHEN + 100 + step, "HTTP 503")
        else:
            ledger.finish(pending[:1], action, WHEN + step, thread=f"ts-{step}")


def _unnumbered(rows: list[Pending]) -> list[Pending]:
    """Rows without their local sequence number (each cache numbers its own)."""
    return [replace(p, seq=0) for p in rows]


@settings(max_examples=60, deadline=None)
@given(operations, operations)
def test_a_ledger_restored_from_its_records_is_the_ledger_that_wrote_them(
    written: list[tuple[str, int, str, int]], elsewhere: list[tuple[str, int, str, int]]
) -> None:
    """Whatever was queued, delivered, retried or given up on partition 1, another
    replica's ledger holds exactly that after restoring partition 1 from the records:
    the same rows, the same answers to the dispatcher's questions; its own rows of
    partition 0 stay as they were."""
    with tempfile.TemporaryDirectory() as tmp:
        a = DeliveryLedger(Path(tmp) / "a.sqlite3")
        b = DeliveryLedger(Path(tmp) / "b.sqlite3")
        _apply(a, written)
        _apply(b, elsewhere)
        keys = [(r, f"al1-{n}") for r in ROUTES for n in range(4)]
        theirs_before = {k: b.record(*k) for k in keys if b.partition_of(*k) == 0}
        records = {ledger_key(*k): a.record(*k) for k in keys if a.partition_of(*k) == 1}
        assert b.replace_partition(1, records) == 0
        for key in keys:
            if a.partition_of(*key) == 1:
                assert b.record(*key) == a.record(*key)
                assert b.last_notified(*key) == a.last_notified(*key)
                assert b.thread(*key) == a.thread(*key)
                assert _unnumbered(b.pending_for(*key)) == _unnumbered(a.pending_for(*key))
            elif b.partition_of(*key) == 1:
                raise AssertionError(f"{key}: a row of partition 1 the records do not hold")
        assert {k: b.record(*k) for k in keys if b.partition_of(*k) == 0} == theirs_before
        a.close()
        b.close()


def test_a_record_that_is_no_ledger_row_is_skipped_and_counted(tmp_path: Path) -> None:
    ledger = DeliveryLedger(tmp_path / "n.sqlite3")
    assert ledger.replace_partition(0, {"slack/al1-x": b"{}", "slack/al1-y": b"\x00"}) == 2
    assert ledger.depth("slack") == 0
    ledger.close()


class HeldSink(RecordingSink):
    """A sink whose sends wait for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        self.started.set()
        await self.release.wait()
        return await super().send(alert, reason, thread)


async def test_a_revoked_partition_is_drained_and_then_delivers_nothing(tmp_path: Path) -> None:
    """``drain`` returns only after the delivery in flight from the partition is done
    and recorded; after the revoke, the partition's queued revisions stay queued for
    the next owner while the partitions still owned go on."""
    sink = HeldSink()
    ledger = DeliveryLedger(tmp_path / "n.sqlite3")
    dispatcher = Dispatcher(
        [Route(RouteConfig(name="slack", sink="console", min_interval_seconds=0), sink)],
        ledger,
        producer=None,  # type: ignore[arg-type]  # only dead letters use it
        deadletter_topic="dlq",
        policy=DeliveryPolicy(),
        metrics=DeliveryMetrics(CollectorRegistry()),
    )
    ledger.owned = frozenset({0, 1})
    now = datetime.now(UTC)
    dispatcher.offer(revision("al1-a", 1), frozenset(), now, partition=1)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        await asyncio.wait_for(sink.started.wait(), 5)
        ledger.owned = frozenset({0})
        draining = asyncio.create_task(dispatcher.drain({1}))
        await asyncio.sleep(0.2)
        assert not draining.done(), "drain returned with a delivery in flight"
        sink.release.set()
        await asyncio.wait_for(draining, 5)
        assert ledger.counts() == {("slack", "done"): 1}
        dispatcher.offer(revision("al1-b", 1), frozenset(), now, partition=1)
        dispatcher.offer(revision("al1-c", 1), frozenset(), now, partition=0)
        await until(lambda: len(sink.sent) == 2, 5)
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        await running
    assert [a for a, _, _ in sink.sent] == ["al1-a", "al1-c"]
    ledger.owned = None
    assert [p.alert.alert_id for p in ledger.pending_for("slack", "al1-b")] == ["al1-b"]
    ledger.close()
