"""The delivery queue on a real ledger with a controlled clock: digests gather, later
revisions replace waiting ones, immediate routes do not wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from dohawatch.notifier.delivery import DeliveryMetrics, DeliveryPolicy, Dispatcher
from dohawatch.notifier.ledger import DeliveryLedger
from dohawatch.notifier.wiring import Route
from dohawatch.shared.config_file import RouteConfig
from dohawatch.shared.errors import SinkError
from dohawatch.shared.events import Alert, AlertSource
from tests.factories import until

from .test_routes import alert


class RecordingSink:
    """A sink that keeps what it is given (the interface, not a fake Slack)."""

    kind = "console"

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, str]] = []
        self.digests: list[list[tuple[str, int]]] = []

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        self.sent.append((alert.alert_id, alert.revision, reason))
        return None

    async def send_digest(self, alerts: Sequence[Alert], digest_id: str) -> None:
        self.digests.append([(a.alert_id, a.revision) for a in alerts])


def with_sources(a: Alert, n: int, revision: int) -> Alert:
    sources = tuple(
        AlertSource(outlet=f"o{i}", url=f"https://o{i}.example/", title="t", published_at=None)
        for i in range(n)
    )
    return a.model_copy(update={"sources": sources, "revision": revision})


async def test_a_digest_waits_for_its_boundary_and_sends_the_latest_revisions(
    tmp_path: Path,
) -> None:
    """Three stories, one revised: the immediate route sends three messages at once (the
    revised one as new, its first revision replaced); the 30-minute digest sends one
    message with the three at 12:30."""
    now = [datetime(2025, 7, 24, 12, 0, 10, tzinfo=UTC).timestamp()]
    digest, immediate = RecordingSink(), RecordingSink()
    ledger = DeliveryLedger(tmp_path / "ledger.sqlite3")
    dispatcher = Dispatcher(
        [
            Route(RouteConfig(name="digest", sink="console", digest_minutes=30), digest),
            Route(RouteConfig(name="now", sink="console", min_interval_seconds=0), immediate),
        ],
        ledger,
        producer=None,  # type: ignore[arg-type]  # only dead letters use it
        deadletter_topic="dlq",
        policy=DeliveryPolicy(),
        metrics=DeliveryMetrics(CollectorRegistry()),
        clock=lambda: now[0],
    )
    a1, a2, a3 = (alert().model_copy(update={"alert_id": f"al1-{i}"}) for i in (1, 2, 3))
    fetched = datetime.fromtimestamp(now[0], UTC)
    for revision in (a1, a2, a3, with_sources(a1, 3, 2)):
        dispatcher.offer(revision, frozenset(), fetched)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        await until(lambda: len(immediate.sent) == 3)
        await asyncio.sleep(0.1)
        assert sorted(immediate.sent) == [
            ("al1-1", 2, "new"),
            ("al1-2", 1, "new"),
            ("al1-3", 1, "new"),
        ]
        assert digest.digests == [], "nothing before the boundary"
        now[0] = datetime(2025, 7, 24, 12, 30, 1, tzinfo=UTC).timestamp()
        dispatcher.wake()
        await until(lambda: len(digest.digests) == 1)
    finally:
        stop.set()
        await running
    assert sorted(digest.digests[0]) == [("al1-1", 2), ("al1-2", 1), ("al1-3", 1)]
    assert ledger.counts() == {
        ("digest", "done"): 3,
        ("digest", "superseded"): 1,
        ("now", "done"): 3,
        ("now", "superseded"): 1,
    }
    ledger.close()


class UnavailableSink(RecordingSink):
    """A sink that answers 5xx while ``down``, and always for the alerts in ``refused``."""

    def __init__(self, refused: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.down = False
        self.refused = refused
        self.tries: list[tuple[str, float]] = []

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        self.tries.append((alert.alert_id, time.monotonic()))
        if self.down or alert.alert_id in self.refused:
            raise SinkError("5xx", "HTTP 503")
        return await super().send(alert, reason, thread)


def _dispatcher(tmp_path: Path, sink: RecordingSink, policy: DeliveryPolicy) -> Dispatcher:
    return Dispatcher(
        [Route(RouteConfig(name="slack", sink="console", min_interval_seconds=0), sink)],
        DeliveryLedger(tmp_path / "ledger.sqlite3"),
        producer=None,  # type: ignore[arg-type]  # only dead letters use it
        deadletter_topic="dlq",
        policy=policy,
        metrics=DeliveryMetrics(CollectorRegistry()),
    )


def _offer(dispatcher: Dispatcher, *alert_ids: str) -> None:
    for alert_id in alert_ids:
        dispatcher.offer(
            alert().model_copy(update={"alert_id": alert_id}), frozenset(), datetime.now(UTC)
        )


async def test_a_revision_that_keeps_failing_holds_back_no_other(tmp_path: Path) -> None:
    """One revision the sink keeps failing waits out its retries; those behind it go at once."""
    sink = UnavailableSink(refused=frozenset({"al1-bad"}))
    dispatcher = _dispatcher(tmp_path, sink, DeliveryPolicy(backoff_seconds=0.5))
    _offer(dispatcher, "al1-bad", "al1-a", "al1-b")
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        await until(lambda: len(sink.sent) == 2, seconds=0.4)  # well inside the bad one's backoff
    finally:
        stop.set()
        await running
    assert sorted(a for a, _, _ in sink.sent) == ["al1-a", "al1-b"]
    assert dispatcher.ledger.counts() == {("slack", "done"): 2, ("slack", "pending"): 1}


async def test_an_outage_delays_delivery_and_drops_nothing(tmp_path: Path) -> None:
    """A sink down for longer than eight tries used to last delivers everything once it is
    back, promptly, and is probed about once per backoff while down, not once per revision."""
    sink = UnavailableSink()
    sink.down = True
    policy = DeliveryPolicy(give_up_after_seconds=60, backoff_seconds=0.02, backoff_max_seconds=0.2)
    dispatcher = _dispatcher(tmp_path, sink, policy)
    _offer(dispatcher, "al1-a", "al1-b", "al1-c")
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        await asyncio.sleep(2.0)
        tries_while_down = len(sink.tries)
        sink.down = False
        back = time.monotonic()
        await until(lambda: len(sink.sent) == 3, seconds=2.0)
        resumed = time.monotonic() - back
    finally:
        stop.set()
        await running
    assert tries_while_down > 8  # more tries than the old count limit allowed
    assert tries_while_down < 2.0 / 0.1 + 3  # about one probe per capped backoff
    assert resumed < 0.5  # within the capped backoff and a little
    assert dispatcher.ledger.counts() == {("slack", "done"): 3}
