"""The notifier service: one alert per development, revised as sources add up.

    poll news.classified → decode ClassifiedItem → fold into its story (pure)
    → produce alert revisions to alerts → await acks → store stories
    → queue each revision in the delivery ledger for the routes that want it
    → commit;  meanwhile one worker per route delivers from the ledger

The classified topic is keyed by ``story_key``, so one replica owns a story at a
time and replicas never race on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx

from dohawatch.shared.codec import Outgoing, encode
from dohawatch.shared.config_file import RouteConfig, route_secrets
from dohawatch.shared.events import Alert, ClassifiedItem
from dohawatch.shared.logs import log_event
from dohawatch.shared.metrics import package_version
from dohawatch.shared.runtime import ServiceContext, consume

from .delivery import DeliveryMetrics, DeliveryPolicy, Dispatcher
from .ledger import DeliveryLedger
from .store import StoryStore
from .stories import AlertRules, Story, decide
from .wiring import Route, make_sink

__all__ = ["AlertHandler", "run_notifier"]

log = logging.getLogger("dohawatch.notifier")
GROUP_ID = "dohawatch-notifier"


class AlertHandler:
    """Plugs story decisions, the story store and the dispatcher into the loop."""

    def __init__(
        self,
        rules: AlertRules,
        store: StoryStore,
        dispatcher: Dispatcher,
        topic: str,
    ) -> None:
        self.rules = rules
        self.store = store
        self.dispatcher = dispatcher
        self.topic = topic
        self._dirty: dict[str, Story] = {}
        self._alerts: list[tuple[Alert, datetime]] = []

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
            self._alerts.append((alert, classified.item.fetched_at))
            out.append(encode(alert, self.topic))
        return out

    async def acknowledged(self) -> None:
        stories = self._dirty
        self.store.put_many(list(stories.values()))
        alerts, self._alerts, self._dirty = self._alerts, [], {}
        for alert, fetched_at in alerts:
            self.dispatcher.metrics.alerts.labels(alert.event_type, alert.severity.value).inc()
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
            tags = stories[alert.story_key].feed_tags if alert.story_key in stories else frozenset()
            self.dispatcher.offer(alert, tags, fetched_at)


def _stop_on_crash(stop: asyncio.Event) -> Callable[[asyncio.Task[None]], None]:
    """A crashed delivery worker stops the service: at-least-once makes the restart safe."""

    def done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            stop.set()

    return done


async def run_notifier(
    ctx: ServiceContext, rules: AlertRules, route_configs: Sequence[RouteConfig]
) -> None:
    """Raise alerts and deliver them until ``ctx.stop`` is set.

    Raises:
        ConfigError: a route lacks a setting its sink needs.
    """
    settings = ctx.settings
    client = httpx.AsyncClient(
        timeout=settings.delivery_timeout_seconds,
        headers={"User-Agent": f"dohawatch/{package_version()} (+{settings.fetch_contact_url})"},
        follow_redirects=False,
    )
    try:
        secrets = route_secrets(route_configs)  # read once, as SecretStr
        routes = [Route(cfg, make_sink(cfg, settings, client, secrets)) for cfg in route_configs]
        path = settings.state_dir / "notifier.sqlite3"
        store, ledger = StoryStore(path), DeliveryLedger(path)
        dispatcher = Dispatcher(
            routes,
            ledger,
            ctx.producer,
            ctx.topics.deadletter,
            DeliveryPolicy(
                settings.delivery_give_up_after_seconds,
                settings.delivery_backoff_seconds,
                settings.delivery_backoff_max_seconds,
            ),
            DeliveryMetrics(ctx.registry),
        )
        log_event(log, "routes", status="ok", routes=",".join(r.name for r in routes) or "none")
        delivering = asyncio.create_task(dispatcher.run(ctx.stop), name="delivery")
        delivering.add_done_callback(_stop_on_crash(ctx.stop))
        try:
            handler = AlertHandler(rules, store, dispatcher, ctx.topics.alerts)
            await consume(
                ctx,
                group=GROUP_ID,
                topic=ctx.topics.classified,
                model=ClassifiedItem,
                handler=handler,
            )
        finally:
            ctx.stop.set()
            await delivering
            store.close()
            ledger.close()
    finally:
        await client.aclose()
