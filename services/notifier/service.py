"""The notifier service: one alert per development, revised as sources add up.

    poll news.classified → decode ClassifiedItem → fold into its story (pure)
    → produce alert revisions to alerts, and the stories to their changelog
    → await acks → cache the stories
    → queue each revision in the delivery ledger for the routes that want it,
      and write the ledger's changes to its changelog → commit
    meanwhile one worker per route delivers from the ledger

The classified topic is keyed by ``story_key``, so one replica owns a story at a
time and replicas never race on it. Its state moves with its partition
(:mod:`.changelog`): claimed and restored when the group assigns the partition,
handed over when it revokes it, after the deliveries in flight from it are done.
A batch whose partition another replica has claimed meanwhile (the group moved
it without telling this one) is neither delivered nor committed there: the
partition is given up and the group rejoined (docs/kafka.md). The partitions it
writes nothing to are checked every ``kafka_check_interval_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

import httpx

from dohawatch.shared.codec import Outgoing, encode
from dohawatch.shared.config_file import RouteConfig, route_secrets
from dohawatch.shared.errors import BrokerError
from dohawatch.shared.events import Alert, ClassifiedItem
from dohawatch.shared.logs import log_event
from dohawatch.shared.metrics import package_version
from dohawatch.shared.runtime import ServiceContext, consume, revoke_wait_seconds
from dohawatch.shared.tables import Claims, check_copartitioned, replica_name

from .changelog import restore, story_record
from .delivery import DeliveryMetrics, DeliveryPolicy, Dispatcher
from .ledger import DeliveryLedger
from .store import StoryStore
from .stories import AlertRules, Story, decide
from .wiring import Route, make_sink

__all__ = ["AlertHandler", "run_notifier"]

log = logging.getLogger("dohawatch.notifier")
GROUP_ID = "dohawatch-notifier"


class AlertHandler:
    """Plugs story decisions, the story store and the dispatcher into the loop, and
    moves their state with the partitions the group assigns."""

    def __init__(
        self,
        rules: AlertRules,
        store: StoryStore,
        dispatcher: Dispatcher,
        ctx: ServiceContext,
        replica: str,
        claims: Claims,
    ) -> None:
        self.rules = rules
        self.store = store
        self.dispatcher = dispatcher
        self.ctx = ctx
        self.replica = replica
        self._dirty: dict[str, tuple[int, Story]] = {}
        self._alerts: list[tuple[Alert, datetime]] = []
        self.claims = claims
        self._written: dict[int, tuple[str | None, int]] = {}  # partition → (claim, last offset)
        self._superseded: set[int] = set()  # given up, for the loop to stop committing
        self.failure: BrokerError | None = None  # a restore that failed stops the service

    async def handle(
        self, events: Sequence[ClassifiedItem], partitions: Sequence[int]
    ) -> list[Outgoing]:
        now = datetime.now(UTC)
        topics = self.ctx.topics
        out = []
        for classified, partition in zip(events, partitions, strict=True):
            key = classified.story_key
            story = self._dirty[key][1] if key in self._dirty else self.store.get(key)
            story, alert = decide(story, classified, self.rules, now)
            if alert is None:
                continue
            assert story is not None
            self._dirty[key] = (partition, story)
            self._alerts.append((alert, classified.item.fetched_at))
            out.append(encode(alert, topics.alerts))
        out += [
            story_record(
                topics.notifier_stories,
                partition,
                story,
                self.replica,
                self.claims.header(partition),
                partial(self._written_at, partition, self.claims.token(partition)),
            )
            for partition, story in self._dirty.values()
        ]
        return out

    def _written_at(self, partition: int, token: str | None, offset: int) -> None:
        """Note that a story record of this batch, written under ``token``, is at ``offset``."""
        last = self._written.get(partition, (token, -1))[1]
        self._written[partition] = (token, max(last, offset))

    async def acknowledged(self) -> None:
        written, self._written = self._written, {}
        alerts, self._alerts = self._alerts, []
        stories, self._dirty = self._dirty, {}
        lost = await self.claims.superseded(written)
        if lost:
            self.give_up(lost)
            stories = {k: v for k, v in stories.items() if v[0] not in lost}
            alerts = [(a, f) for a, f in alerts if a.story_key in stories]
        self.store.put_many(stories.values())
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
            partition, story = stories[alert.story_key]
            self.dispatcher.offer(alert, story.feed_tags, fetched_at, partition)
        await self.dispatcher.log_changes()  # before the commit: a failure replays the batch

    def give_up(self, partitions: set[int]) -> None:
        """Stop delivering from ``partitions``, which another replica has claimed;
        :meth:`superseded` hands them to the loop."""
        ledger = self.dispatcher.ledger
        ledger.owned = (ledger.owned or frozenset()) - partitions
        self._superseded |= partitions
        self.dispatcher.metrics.superseded.inc(len(partitions))
        log_event(
            log,
            "partitions_superseded",
            level=logging.WARNING,
            status="given-up",
            partitions=",".join(map(str, sorted(partitions))),
        )

    async def watch_claims(self, stop: asyncio.Event) -> None:
        """Every ``kafka_check_interval_seconds`` until ``stop``, give up the owned
        partitions another replica has claimed: the batch check finds them only
        where this replica writes, and its deliveries come from the rest too."""
        interval = self.ctx.settings.kafka_check_interval_seconds
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()
            if stop.is_set():
                return
            try:
                lost = await self.claims.taken(self.dispatcher.ledger.owned or ())
            except BrokerError as exc:  # the broker's reachability is watched elsewhere
                log_event(
                    log, "claims_checked", level=logging.WARNING, status="error", error=str(exc)
                )
                continue
            if lost:
                self.give_up(lost)

    def superseded(self) -> set[int]:
        """The partitions given up since the last call (see :meth:`give_up`)."""
        lost, self._superseded = self._superseded, set()
        return lost

    async def assigned(self, partitions: set[int]) -> None:
        """Claim the partitions, read their stories and ledger from the changelogs,
        then deliver them."""
        ctx = self.ctx
        if ctx.stop.is_set():
            return  # stopping: the partitions' next owner reads their state
        try:
            await self.claims.claim(ctx.producer, partitions)
            restored = await restore(
                ctx.settings,
                ctx.bootstrap,
                ctx.topics,
                partitions,
                self.store,
                self.dispatcher.ledger,
            )
        except BrokerError as exc:
            # Going on with a stale cache could deliver again what another replica
            # delivered: stop instead, and let the restart read the changelogs.
            log_event(log, "state_restored", level=logging.ERROR, status="error", error=str(exc))
            if not ctx.stop.is_set():
                self.failure = exc
                ctx.stop.set()
            return
        ledger = self.dispatcher.ledger
        ledger.owned = (ledger.owned or frozenset()) | partitions
        self.dispatcher.wake()
        log_event(
            log,
            "state_restored",
            status="ok",
            partitions=",".join(map(str, sorted(partitions))),
            stories=restored.stories,
            ledger_records=restored.ledger_records,
        )

    async def revoked(self, partitions: set[int]) -> None:
        """Stop taking the partitions' deliveries, let those in flight finish, and
        write their outcome to the changelog for the next owner."""
        ledger = self.dispatcher.ledger
        ledger.owned = (ledger.owned or frozenset()) - partitions
        await self.dispatcher.drain(partitions, revoke_wait_seconds(self.ctx.settings))


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
        BrokerError: the state topics have fewer partitions than news.classified,
            an assigned partition's state could not be read, or a batch
            could not be produced (its input is replayed after the restart).
    """
    settings = ctx.settings
    topics = ctx.topics
    await check_copartitioned(
        settings,
        ctx.bootstrap,
        topics.classified,
        [topics.notifier_stories, topics.notifier_ledger],
    )
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
        ledger.owned = frozenset()  # until the group assigns partitions
        replica = replica_name(settings, "notifier")
        claims = Claims(
            settings, ctx.bootstrap, [topics.notifier_stories, topics.notifier_ledger], replica
        )
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
            changelog_topic=ctx.topics.notifier_ledger,
            replica=replica,
            claims=claims,
        )
        log_event(log, "routes", status="ok", routes=",".join(r.name for r in routes) or "none")
        delivering = asyncio.create_task(dispatcher.run(ctx.stop), name="delivery")
        delivering.add_done_callback(_stop_on_crash(ctx.stop))
        handler = AlertHandler(rules, store, dispatcher, ctx, replica, claims)
        watching = asyncio.create_task(handler.watch_claims(ctx.stop), name="claims")
        watching.add_done_callback(_stop_on_crash(ctx.stop))
        try:
            await consume(
                ctx,
                group=GROUP_ID,
                topic=ctx.topics.classified,
                model=ClassifiedItem,
                handler=handler,
                client_id=replica,
            )
            if handler.failure is not None:
                raise handler.failure
        finally:
            ctx.stop.set()
            watching.cancel()  # only checks: nothing to finish
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            await delivering
            await claims.close()
            store.close()
            ledger.close()
    finally:
        await client.aclose()
