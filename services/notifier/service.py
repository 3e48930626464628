"""The notifier service: one alert per development, revised as sources add up.

    poll news.classified → decode ClassifiedItem → fold into its story (pure)
    → produce alert revisions to alerts → await acks → store stories
    → hand the revisions to the sinks → commit

The classified topic is keyed by ``story_key``, so one replica owns a story at a
time and replicas never race on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from dohawatch.shared.codec import Outgoing, encode
from dohawatch.shared.errors import SinkError
from dohawatch.shared.events import Alert, ClassifiedItem
from dohawatch.shared.kafka import make_consumer
from dohawatch.shared.logs import log_event
from dohawatch.shared.metrics import PipelineMetrics
from dohawatch.shared.pipeline import run_pipeline
from dohawatch.shared.runtime import ServiceContext
from prometheus_client import CollectorRegistry, Counter

from .sinks import Sink
from .store import StoryStore
from .stories import AlertRules, Story, decide

__all__ = ["AlertHandler", "run_notifier"]

log = logging.getLogger("dohawatch.notifier")
GROUP_ID = "dohawatch-notifier"


class AlertHandler:
    """Plugs story decisions, the story store and the sinks into the loop."""

    def __init__(
        self,
        rules: AlertRules,
        store: StoryStore,
        sinks: Sequence[Sink],
        topic: str,
        registry: CollectorRegistry,
    ) -> None:
        self.rules = rules
        self.store = store
        self.sinks = sinks
        self.topic = topic
        self._dirty: dict[str, Story] = {}
        self._alerts: list[Alert] = []
        self.alerts = Counter(
            "dohawatch_alerts_total",
            "Alert revisions produced.",
            ["event_type", "severity"],
            registry=registry,
        )
        self.deliveries = Counter(
            "dohawatch_deliveries_total",
            "Deliveries by sink and outcome.",
            ["sink", "outcome"],
            registry=registry,
        )

    async def handle(self, events: Sequence[ClassifiedItem]) -> list[Outgoing]:
        now = datetime.now(UTC)
        out = []
        for classified in events:
            key = classified.story_key
            story = self._dirty.get(key) or self.store.get(key)
            story, alert = decide(story, classified, self.rules, now)
            if alert is None:
                continue
            assert story is not None
            self._dirty[key] = story
            self._alerts.append(alert)
            out.append(encode(alert, self.topic))
        return out

    async def acknowledged(self) -> None:
        self.store.put_many(list(self._dirty.values()))
        alerts, self._alerts, self._dirty = self._alerts, [], {}
        for alert in alerts:
            self.alerts.labels(alert.event_type, alert.severity.value).inc()
            log_event(
                log,
                "alerted",
                status="ok",
                alert_id=alert.alert_id,
                story_key=alert.story_key,
                revision=alert.revision,
                event_type=alert.event_type,
                severity=alert.severity.value,
            )
            for sink in self.sinks:
                try:
                    await sink.deliver(alert)
                except SinkError as exc:
                    self.deliveries.labels(sink.name, "error").inc()
                    log_event(
                        log,
                        "delivered",
                        level=logging.WARNING,
                        status="error",
                        sink=sink.name,
                        alert_id=alert.alert_id,
                        error=str(exc),
                    )
                else:
                    self.deliveries.labels(sink.name, "ok").inc()


async def run_notifier(ctx: ServiceContext, rules: AlertRules, sinks: Sequence[Sink]) -> None:
    """Raise alerts until ``ctx.stop`` is set."""
    store = StoryStore(ctx.settings.state_dir / "notifier.sqlite3")
    consumer = make_consumer(ctx.settings, ctx.bootstrap, GROUP_ID)
    await consumer.start()
    ctx.readiness.set("kafka")
    try:
        await run_pipeline(
            consumer,
            ctx.producer,
            service="notifier",
            topics=[ctx.topics.classified],
            model=ClassifiedItem,
            handler=AlertHandler(rules, store, sinks, ctx.topics.alerts, ctx.registry),
            deadletter_topic=ctx.topics.deadletter,
            metrics=PipelineMetrics(ctx.registry),
            stop=ctx.stop,
        )
    finally:
        ctx.readiness.set("kafka", False)
        await consumer.stop()
        store.close()
