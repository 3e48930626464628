"""The classifier service: tags every raw item and republishes it keyed by story.

    poll news.raw → decode NewsItem → classify (engine, pure) → ClassifiedItem
    → produce to news.classified → await acks → commit

Irrelevant items are published too (``relevant: false``) so downstream consumers
and dashboards see the whole flow; the notifier ignores them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dohawatch.shared.codec import Outgoing, encode
from dohawatch.shared.events import ClassifiedItem, NewsItem
from dohawatch.shared.kafka import make_consumer
from dohawatch.shared.logs import log_event
from dohawatch.shared.metrics import PipelineMetrics
from dohawatch.shared.pipeline import run_pipeline
from dohawatch.shared.runtime import ServiceContext
from prometheus_client import CollectorRegistry, Counter

from .engine import Classifier

__all__ = ["ClassifyHandler", "classify_item", "run_classifier"]

log = logging.getLogger("dohawatch.classifier")
GROUP_ID = "dohawatch-classifier"


def classify_item(classifier: Classifier, item: NewsItem) -> ClassifiedItem:
    """The contract event for ``item``."""
    result = classifier.classify(item.title, item.summary)
    return ClassifiedItem(
        item=item,
        relevant=result.relevant,
        relevance=result.relevance,
        events=result.events,
        entities=result.entities,
        story_key=classifier.story_key(item, result),
        classifier_version=classifier.version,
    )


class ClassifyHandler:
    """Plugs the engine into the at-least-once loop."""

    def __init__(self, classifier: Classifier, topic: str, registry: CollectorRegistry) -> None:
        self.classifier = classifier
        self.topic = topic
        self.items = Counter(
            "dohawatch_classified_items_total", "Items classified.", ["relevant"], registry=registry
        )
        self.events = Counter(
            "dohawatch_classified_events_total",
            "Event tags by type.",
            ["event_type"],
            registry=registry,
        )

    async def handle(self, events: Sequence[NewsItem]) -> list[Outgoing]:
        out = []
        for item in events:
            classified = classify_item(self.classifier, item)
            self.items.labels(str(classified.relevant).lower()).inc()
            for tagged in classified.events:
                self.events.labels(tagged.type).inc()
            log_event(
                log,
                "processed",
                level=logging.DEBUG,
                status="ok",
                item_id=item.item_id,
                story_key=classified.story_key,
                relevant=classified.relevant,
                events=[e.type for e in classified.events],
            )
            out.append(encode(classified, self.topic))
        return out

    async def acknowledged(self) -> None:
        """Nothing to persist: the classifier is stateless."""


async def run_classifier(ctx: ServiceContext, classifier: Classifier) -> None:
    """Classify until ``ctx.stop`` is set."""
    consumer = make_consumer(ctx.settings, ctx.bootstrap, GROUP_ID)
    await consumer.start()
    ctx.readiness.set("kafka")
    try:
        await run_pipeline(
            consumer,
            ctx.producer,
            service="classifier",
            topics=[ctx.topics.raw],
            model=NewsItem,
            handler=ClassifyHandler(classifier, ctx.topics.classified, ctx.registry),
            deadletter_topic=ctx.topics.deadletter,
            metrics=PipelineMetrics(ctx.registry),
            stop=ctx.stop,
        )
    finally:
        ctx.readiness.set("kafka", False)
        await consumer.stop()
