"""Runs one or more services on the configured or the embedded broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from dohawatch.shared.broker import broker_settings, kafka_bootstrap
from dohawatch.shared.config_file import AlertConfig, FileConfig, RouteConfig
from dohawatch.shared.errors import BrokerError
from dohawatch.shared.kafka import Topics, ensure_topics
from dohawatch.shared.logs import log_event
from dohawatch.shared.runtime import STOP_GRACE_SECONDS, ServiceContext, service_context
from dohawatch.shared.settings import Settings
from dohawatch.shared.tasks import first_failure, until_first

from .classifier.engine import Classifier
from .classifier.pack import load_pack
from .classifier.service import run_classifier
from .fetcher.service import run_fetcher
from .notifier.service import run_notifier
from .notifier.stories import AlertRules
from .notifier.wiring import route_configs

__all__ = ["SERVICES", "RunPlan", "alert_rules", "run_plan"]

SERVICES = ("fetcher", "classifier", "notifier")
log = logging.getLogger("dohawatch")


def alert_rules(classifier: Classifier, overrides: AlertConfig | None = None) -> AlertRules:
    """The topic pack's alert rules with the configuration file's overrides."""
    overrides = overrides or AlertConfig()
    severities = {name: spec.severity for name, spec in classifier.pack.events.items()}
    for name, severity in overrides.severities.items():
        if severity == "off":
            severities.pop(name, None)
        else:
            severities[name] = severity
    return AlertRules(
        severities,
        overrides.min_relevance
        if overrides.min_relevance is not None
        else classifier.pack.relevance.threshold,
        timedelta(hours=overrides.story_window_hours),
        overrides.escalate_at_outlets,
    )


@dataclass
class RunPlan:
    """What to run, with what; built by the CLI, the demo and the tests."""

    settings: Settings
    config: FileConfig
    services: Sequence[str] = SERVICES
    routes: Sequence[RouteConfig] | None = None  # None: from the settings and the file
    started: asyncio.Event = field(default_factory=asyncio.Event)
    contexts: dict[str, ServiceContext] = field(default_factory=dict)
    bootstrap: str | None = None

    def port(self, name: str) -> int:
        ports = {
            "fetcher": self.settings.fetcher_http_port,
            "classifier": self.settings.classifier_http_port,
            "notifier": self.settings.notifier_http_port,
        }
        return ports[name]


async def _run_one(
    plan: RunPlan,
    name: str,
    settings: Settings,
    bootstrap: str,
    stop: asyncio.Event,
    classifier: Classifier,
) -> None:
    async with service_context(name, settings, bootstrap, plan.port(name), stop) as ctx:
        plan.contexts[name] = ctx
        log_event(log, "started", status="ok", service=name, ops_port=ctx.ops_port)
        match name:
            case "fetcher":
                await run_fetcher(ctx, plan.config.feeds)
            case "classifier":
                await run_classifier(ctx, classifier)
            case "notifier":
                routes = plan.routes
                if routes is None:
                    routes = route_configs(plan.settings, plan.config)
                await run_notifier(ctx, alert_rules(classifier, plan.config.alerts), routes)
            case _:
                raise ValueError(f"no service named {name!r}; the services are {SERVICES}")


DRAIN_SECONDS = 30.0
"""How long a graceful stop on the embedded broker waits for the consumers to catch up."""


def stop_grace_seconds(settings: Settings) -> float:
    """How long a stop of the process may take before it exits anyway: a service's own
    bound, and on the embedded broker the consumers' drain before it."""
    return STOP_GRACE_SECONDS + (DRAIN_SECONDS if settings.embedded_broker else 0.0)


_SETTLE_SECONDS = 1.0  # lag must stay at zero this long: a fetch answer may still be on its way


def _lag(ctx: ServiceContext) -> float | None:
    """The service's consumer lag summed over its partitions; None before it knows any."""
    samples = [
        sample.value
        for metric in ctx.registry.collect()
        if metric.name == "dohawatch_consumer_lag_messages"
        for sample in metric.samples
    ]
    return sum(samples) if samples else None


async def _drain(plan: RunPlan, names: Sequence[str], crashed: asyncio.Event) -> bool:
    """Wait until each of ``names``, in the order data flows, has read everything before it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    for name in names:
        settled_since: float | None = None
        while not crashed.is_set() and loop.time() < deadline:
            ctx = plan.contexts.get(name)
            if ctx is not None and _lag(ctx) == 0:
                settled_since = settled_since or loop.time()
                if loop.time() - settled_since >= _SETTLE_SECONDS:
                    break
            else:
                settled_since = None
            await asyncio.sleep(0.05)
        else:
            return False
    return True


async def run_plan(plan: RunPlan, stop: asyncio.Event) -> None:
    """Run ``plan.services`` until ``stop`` is set; the first failure stops all.

    Starts the embedded broker when no bootstrap servers are configured, and
    creates the topics first. On the embedded broker, which keeps everything in
    memory, a stop is graceful: the fetcher stops first, the classifier and the
    notifier run until they have read everything (``DRAIN_SECONDS`` at most), and
    only then do they and the broker stop, so no fetched item is lost with it.
    """
    classifier = Classifier(load_pack(plan.config.topic_pack))
    broker_exit: list[int] = []

    def broker_exited(code: int) -> None:
        broker_exit.append(code)
        stop.set()

    async with kafka_bootstrap(plan.settings, on_exit=broker_exited) as bootstrap:
        settings = broker_settings(plan.settings)
        plan.bootstrap = bootstrap
        await ensure_topics(settings, bootstrap, Topics.with_prefix(settings.topic_prefix))
        stops = {name: asyncio.Event() for name in plan.services}
        crashed = asyncio.Event()
        tasks = [
            asyncio.create_task(
                _run_one(plan, name, settings, bootstrap, stops[name], classifier), name=name
            )
            for name in plan.services
        ]
        plan.started.set()
        try:
            for task in await until_first(tasks, stop):
                if task.exception():
                    crashed.set()
                    log_event(
                        log,
                        "stopped",
                        level=logging.ERROR,
                        status="crashed",
                        service=task.get_name(),
                        error=repr(task.exception()),
                    )
            consumers = [n for n in plan.services if n != "fetcher"]
            graceful = stop.is_set() and not crashed.is_set()
            if graceful and settings.embedded_broker and "fetcher" in stops and consumers:
                stops["fetcher"].set()
                fetcher = tasks[list(plan.services).index("fetcher")]
                await asyncio.gather(fetcher, return_exceptions=True)
                drained = await _drain(plan, consumers, crashed)
                log_event(
                    log,
                    "drained",
                    level=logging.INFO if drained else logging.WARNING,
                    status="ok" if drained else "timeout",
                    services=",".join(consumers),
                )
        finally:
            stop.set()
            for event in stops.values():
                event.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        if failure := first_failure(tasks):
            raise failure
        if broker_exit:
            raise BrokerError(f"the embedded broker exited with {broker_exit[0]}")
