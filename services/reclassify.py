"""``dohawatch reclassify``: past news through a topic pack, to see or apply its changes.

    read news.raw over [since, until) (Kafka timestamps) → classify each item
    with the pack → --dry-run: compare with what news.classified holds for the
      same items (the last record of each), and with the alerts the notifier's
      rules make of each side → print the differences
    → otherwise: publish the new records to news.classified, under the pack's
      classifier_version; the notifier folds them into their stories like any
      record, and its delivery ledger keeps what it already sent from going out
      again

This is how an operator checks a pack change against last month's real news
before shipping it. The comparison and the alert folding are pure
(:func:`compare`, :func:`alerts_of`); only :func:`reclassify` touches Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from .app import alert_rules
from .classifier.engine import Classifier
from .classifier.pack import load_pack
from .classifier.service import classify_item
from .notifier.stories import AlertRules, Story, decide
from .shared.at_least_once import produce_and_wait
from .shared.codec import decode, encode
from .shared.config_file import FileConfig
from .shared.errors import ConfigError, DecodeError
from .shared.events import Alert, ClassifiedItem, NewsItem, TaggedEvent
from .shared.kafka import Topics, client_options, make_producer, read_to_high_watermark
from .shared.settings import Settings

__all__ = ["Change", "Report", "alerts_of", "compare", "parse_when", "reclassify", "run"]

PUBLISH_BATCH = 500  # records sent before awaiting their acknowledgements


@dataclass(frozen=True, slots=True)
class Change:
    """How one item's tags move from what news.classified holds to the pack's."""

    before: ClassifiedItem | None  # None: news.classified has no record of the item
    after: ClassifiedItem

    @property
    def relevance_changed(self) -> bool:
        return self.before is None or self.before.relevant != self.after.relevant

    @property
    def gained(self) -> tuple[TaggedEvent, ...]:
        had = {e.type for e in self.before.events} if self.before else set()
        return tuple(e for e in self.after.events if e.type not in had)

    @property
    def lost(self) -> tuple[TaggedEvent, ...]:
        has = {e.type for e in self.after.events}
        return tuple(e for e in (self.before.events if self.before else ()) if e.type not in has)


@dataclass(frozen=True, slots=True)
class Report:
    """What a reclassification found."""

    read: int  # items of news.raw in the range
    changes: tuple[Change, ...]  # items whose relevance or event types change
    appeared: tuple[Alert, ...]  # alerts the pack raises that the current tags do not
    disappeared: tuple[Alert, ...]  # alerts the current tags raise that the pack does not
    published: int = 0  # records written to news.classified (0 on a dry run)

    def lines(self) -> list[str]:
        """The report as an operator reads it."""
        out = []
        for change in self.changes:
            item, after = change.after.item, change.after
            out.append(f"{item.item_id}  {item.title[:100]}")
            if change.relevance_changed:
                before = "none" if change.before is None else _relevance(change.before)
                out.append(f"    relevance {before} -> {_relevance(after)}")
            out += [f"    + {e.type}  {_evidence(e)}" for e in change.gained]
            out += [f"    - {e.type}  {_evidence(e)}" for e in change.lost]
        out += [f"alert + {a.event_type} {a.severity.value}: {a.headline}" for a in self.appeared]
        out += [
            f"alert - {a.event_type} {a.severity.value}: {a.headline}" for a in self.disappeared
        ]
        out.append(
            f"{self.read} items read, {len(self.changes)} changed; alerts "
            f"+{len(self.appeared)} -{len(self.disappeared)}"
            + (f"; {self.published} records published" if self.published else "")
        )
        return out


def _relevance(c: ClassifiedItem) -> str:
    return f"{c.relevance:.2f} ({'relevant' if c.relevant else 'not relevant'})"


def _evidence(event: TaggedEvent) -> str:
    return "; ".join(f'"{span.text}"' for span in event.evidence)


def compare(
    current: Mapping[str, ClassifiedItem], reclassified: Sequence[ClassifiedItem]
) -> tuple[Change, ...]:
    """The items whose relevance or event types differ between ``current`` (by
    item id) and ``reclassified``, in the order of the latter."""
    changes = (Change(current.get(c.item.item_id), c) for c in reclassified)
    return tuple(c for c in changes if c.relevance_changed or c.gained or c.lost)


def alerts_of(classified: Iterable[ClassifiedItem], rules: AlertRules) -> dict[str, Alert]:
    """The alerts the notifier's rules make of ``classified``, folded in order:
    the latest revision of each, by alert id."""
    stories: dict[str, Story] = {}
    alerts: dict[str, Alert] = {}
    for item in classified:
        story, alert = decide(stories.get(item.story_key), item, rules, item.item.fetched_at)
        if story is not None:
            stories[item.story_key] = story
        if alert is not None:
            alerts[alert.alert_id] = alert
    return alerts


async def _read(
    settings: Settings,
    bootstrap: str,
    topic: str,
    model: type[BaseModel],
    since: datetime | None,
    until: datetime | None,
) -> list[BaseModel]:
    """Every decodable record of ``topic`` stamped in [since, until), in offset
    order per partition, partitions one after the other, up to where each
    partition ended when it was first fetched."""
    consumer = AIOKafkaConsumer(**client_options(settings, bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata, topics and their partitions
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        starts: dict[TopicPartition, int | None] = dict(
            await consumer.beginning_offsets(partitions)
        )
        if since is not None:
            found = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in partitions}
            )
            starts = {tp: (found[tp].offset if found.get(tp) else None) for tp in partitions}
        out: list[BaseModel] = []
        limit = int(until.timestamp() * 1000) if until is not None else None
        for tp in partitions:
            start = starts[tp]
            if start is None:
                continue  # nothing at or after `since`
            consumer.seek(tp, start)
            for record in await read_to_high_watermark(consumer, tp):
                if limit is not None and record.timestamp >= limit:
                    continue
                try:
                    out.append(decode(record.value, record.headers, model))
                except DecodeError:
                    continue  # the dead-letter topic has it already
        return out
    finally:
        await consumer.stop()


async def reclassify(
    settings: Settings,
    bootstrap: str,
    config: FileConfig,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    pack: str | None = None,
    dry_run: bool = False,
    out: TextIO | None = None,
) -> Report:
    """Classify the news.raw items of [since, until) with ``pack`` (the
    configuration file's when None); compare with news.classified, and publish
    the new records unless ``dry_run``. Prints the report to ``out``."""
    topics = Topics.with_prefix(settings.topic_prefix)
    classifier = Classifier(load_pack(pack or config.topic_pack))
    items = await _read(settings, bootstrap, topics.raw, NewsItem, since, until)
    reclassified = [classify_item(classifier, item) for item in items if isinstance(item, NewsItem)]
    held = await _read(settings, bootstrap, topics.classified, ClassifiedItem, None, None)
    current = {c.item.item_id: c for c in held if isinstance(c, ClassifiedItem)}
    ours = {c.item.item_id for c in reclassified}
    # Each side's alerts by its own pack's rules: the current tags were made by
    # the configuration file's pack.
    running = classifier if pack is None else Classifier(load_pack(config.topic_pack))
    by_time = sorted(current.values(), key=lambda c: c.item.fetched_at)
    before = alerts_of(
        (c for c in by_time if c.item.item_id in ours), alert_rules(running, config.alerts)
    )
    after = alerts_of(
        sorted(reclassified, key=lambda c: c.item.fetched_at),
        alert_rules(classifier, config.alerts),
    )
    published = 0
    if not dry_run and reclassified:
        producer = make_producer(settings, bootstrap)
        await producer.start()
        try:
            messages = [encode(c, topics.classified) for c in reclassified]
            for start in range(0, len(messages), PUBLISH_BATCH):
                await produce_and_wait(producer, messages[start : start + PUBLISH_BATCH])
        finally:
            await producer.stop()
        published = len(reclassified)
    report = Report(
        read=len(reclassified),
        changes=compare(current, reclassified),
        appeared=tuple(a for key, a in sorted(after.items()) if key not in before),
        disappeared=tuple(a for key, a in sorted(before.items()) if key not in after),
        published=published,
    )
    if out is not None:
        print("\n".join(report.lines()), file=out)
    return report


def parse_when(value: str) -> datetime:
    """A ``--since`` / ``--until`` value: an ISO date or date-time, UTC unless it says."""
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def run(
    settings: Settings,
    config: FileConfig,
    *,
    since: datetime | None,
    until: datetime | None,
    pack: str | None,
    dry_run: bool,
    out: TextIO,
) -> Report:
    """``reclassify`` against the configured Kafka (it reads what is there).

    Raises:
        ConfigError: no Kafka is configured.
    """
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        raise ConfigError(
            "reclassify reads news.raw from Kafka: set DOHAWATCH_KAFKA_BOOTSTRAP_SERVERS"
        )
    return asyncio.run(
        reclassify(
            settings,
            bootstrap,
            config,
            since=since,
            until=until,
            pack=pack,
            dry_run=dry_run,
            out=out,
        )
    )
