"""``dohawatch demo``: the whole pipeline on the embedded broker and the replay feeds.

The alerts shown are read back from the alerts topic by an independent consumer,
exactly as a downstream user would see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from aiokafka import AIOKafkaConsumer

from dohawatch.app import RunPlan, run_plan
from dohawatch.notifier.ledger import DeliveryLedger
from dohawatch.notifier.sinks import format_alert
from dohawatch.shared.codec import decode
from dohawatch.shared.config_file import FeedConfig, FileConfig, load_file_config
from dohawatch.shared.events import Alert, ClassifiedItem
from dohawatch.shared.kafka import Topics
from dohawatch.shared.settings import Settings

from .feeds import ReplayServer, load_replay

__all__ = ["DemoSummary", "run_demo"]

# Fast polling for the replay: a live deployment polls minutes apart.
DEMO_OVERRIDES = {
    "fetch_interval_seconds": 1.0,
    "fetch_min_interval_seconds": 0.5,
    "fetch_allowed_networks": "127.0.0.0/8",  # the replay server is on loopback
    "fetch_host_min_gap_seconds": 0.0,  # and all five feeds share its host
    "kafka_rebalance_timeout_ms": 1000,
    "fetcher_http_port": 0,
    "classifier_http_port": 0,
    "notifier_http_port": 0,
}


@dataclass
class DemoSummary:
    """What the demo saw on the topics."""

    fetched: int = 0
    classified: int = 0
    relevant: int = 0
    events: Counter[str] = field(default_factory=Counter)
    alerts: dict[str, Alert] = field(default_factory=dict)  # latest revision per alert_id
    revisions: int = 0
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)  # (route, status) → n

    def lines(self) -> list[str]:
        """The closing summary."""
        severities = Counter(a.severity.value for a in self.alerts.values())
        out = [
            "",
            "=== summary ===",
            f"items fetched:     {self.fetched}",
            f"items classified:  {self.classified}",
            f"relevant:          {self.relevant}",
            "events by type:    "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.events.items())) or "none"),
            f"alerts:            {len(self.alerts)} ({self.revisions} revisions)",
            "alerts by severity: "
            + (", ".join(f"{k} {v}" for k, v in sorted(severities.items())) or "none"),
            "deliveries:        "
            + (
                ", ".join(f"{r} {s} {n}" for (r, s), n in sorted(self.deliveries.items()))
                or "none (set DOHAWATCH_SLACK_WEBHOOK_URL or DOHAWATCH_SMTP_* to add routes)"
            ),
        ]
        return out


async def _tap(
    bootstrap: str,
    topics: Topics,
    summary: DemoSummary,
    out: TextIO,
    activity: list[float],
    stop: asyncio.Event,
) -> None:
    consumer = AIOKafkaConsumer(
        topics.raw,
        topics.classified,
        topics.alerts,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                activity[0] = time.monotonic()
                for r in records:
                    if tp.topic == topics.raw:
                        summary.fetched += 1
                    elif tp.topic == topics.classified:
                        c = decode(r.value, r.headers, ClassifiedItem)
                        summary.classified += 1
                        summary.relevant += c.relevant
                        summary.events.update(e.type for e in c.events)
                    else:
                        alert = decode(r.value, r.headers, Alert)
                        summary.revisions += 1
                        summary.alerts[alert.alert_id] = alert
                        print(format_alert(alert), file=out, flush=True)
    finally:
        await consumer.stop()


def _deliveries(path: Path) -> dict[tuple[str, str], int]:
    ledger = DeliveryLedger(path)
    try:
        return ledger.counts()
    finally:
        ledger.close()


async def run_demo(
    settings: Settings,
    out: TextIO,
    *,
    follow: bool = False,
    step: float = 0.6,
    max_seconds: float = 55.0,
) -> DemoSummary:
    """Run the demo and return what it saw; prints alerts and the summary to ``out``.

    Ends once every replay item is out and the topics have been quiet for 3 s
    (or after ``max_seconds``), unless ``follow``.
    """
    outlets, items = load_replay()
    server = ReplayServer(outlets, items, step=step)
    server.start()
    summary = DemoSummary()
    with tempfile.TemporaryDirectory(prefix="dohawatch-demo-") as state_dir:
        demo_settings = settings.model_copy(update={**DEMO_OVERRIDES, "state_dir": Path(state_dir)})
        feeds = tuple(
            FeedConfig(url=server.url(slug), name=o["name"], tags=("demo",))
            for slug, o in outlets.items()
        )
        # The replay's feeds, with the routes and alert rules of the configuration file.
        configured = load_file_config(settings.config_file)
        plan = RunPlan(
            demo_settings,
            FileConfig(feeds=feeds, routes=configured.routes, alerts=configured.alerts),
        )
        ledger_path = Path(state_dir) / "notifier.sqlite3"
        stop = asyncio.Event()
        print(
            f"dohawatch demo: {len(items)} items from {len(outlets)} feeds on "
            f"http://127.0.0.1:{server.port}/, replayed one every {step}s",
            file=out,
        )
        services = asyncio.create_task(run_plan(plan, stop))
        await asyncio.wait(
            [services, asyncio.create_task(plan.started.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        if services.done():
            server.stop()
            services.result()  # raises what stopped the pipeline
        assert plan.bootstrap is not None
        activity = [time.monotonic()]
        tap_stop = asyncio.Event()
        tap = asyncio.create_task(
            _tap(
                plan.bootstrap,
                Topics.with_prefix(demo_settings.topic_prefix),
                summary,
                out,
                activity,
                tap_stop,
            )
        )
        started = time.monotonic()
        try:
            while not services.done():
                await asyncio.sleep(0.25)
                quiet = time.monotonic() - activity[0] > 3.0
                caught_up = summary.fetched == len(items) == summary.classified
                if caught_up and quiet and ledger_path.exists():
                    summary.deliveries = _deliveries(ledger_path)
                    quiet = not any(s == "pending" for _, s in summary.deliveries)
                if not follow and (
                    (server.all_revealed() and caught_up and quiet)
                    or time.monotonic() - started > max_seconds
                ):
                    break
        finally:
            tap_stop.set()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await tap
            await services
            server.stop()
        if ledger_path.exists():
            summary.deliveries = _deliveries(ledger_path)
    print("\n".join(summary.lines()), file=out)
    return summary
