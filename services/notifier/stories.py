"""The notifier's pure core: classified items become stories, stories become alerts.

A story is every relevant item with the same ``story_key`` until no source has
added to it for ``window`` (12 h by default); a later item starts the story's
next generation, with a new ``alert_id``. The first alerting item raises
revision 1; each further item makes the next revision, with its source added.
An item seen before (a replay) decides nothing new: it re-issues the story's
current alert only if it is the item that made that revision, so a crash
between produce and commit is repaired with the same ``alert_id`` and revision.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dohawatch.shared import ids
from dohawatch.shared.events import Alert, AlertSource, ClassifiedItem, Severity

__all__ = ["AlertRules", "Story", "decide", "outlet_count"]


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Which classified items raise alerts, and how severe (topic pack defaults,
    overridden by the ``alerts`` section of the configuration file)."""

    severities: dict[str, Severity]  # event type → severity; types not listed never alert
    min_relevance: float = 0.5
    window: timedelta = timedelta(hours=12)
    escalate_at_outlets: int = 0  # one step more severe at this many outlets; 0 never


@dataclass(frozen=True, slots=True)
class Story:
    """What the notifier remembers about one story."""

    alert: Alert
    item_revisions: dict[str, int] = field(default_factory=dict)  # item_id → revision it made
    generation: int = 1
    feed_tags: frozenset[str] = frozenset()
    base_severity: Severity | None = None  # before escalation; None: the alert's


def outlet_count(alert: Alert) -> int:
    """Independent outlets among the alert's sources (one outlet reporting twice is one)."""
    return len({s.outlet for s in alert.sources})


def _source(c: ClassifiedItem) -> AlertSource:
    return AlertSource(
        outlet=c.item.source, url=c.item.url, title=c.item.title, published_at=c.item.published_at
    )


def _escalated(severity: Severity, outlets: int, rules: AlertRules) -> Severity:
    if rules.escalate_at_outlets and outlets >= rules.escalate_at_outlets:
        return list(Severity)[min(severity.rank + 1, Severity.CRITICAL.rank)]
    return severity


def _open(
    classified: ClassifiedItem, severity: Severity, generation: int, now: datetime
) -> tuple[Story, Alert]:
    primary = classified.events[0]
    alert = Alert(
        alert_id=ids.alert_id(classified.story_key, generation),
        story_key=classified.story_key,
        event_type=primary.type,
        severity=severity,
        headline=classified.item.title,
        summary=classified.item.summary,
        sources=(_source(classified),),
        first_seen=classified.item.fetched_at,
        updated_at=now,
        revision=1,
        evidence=primary.evidence,
    )
    story = Story(
        alert,
        {classified.item.item_id: 1},
        generation,
        frozenset(classified.item.feed_tags),
        severity,
    )
    return story, alert


def decide(
    story: Story | None, classified: ClassifiedItem, rules: AlertRules, now: datetime
) -> tuple[Story | None, Alert | None]:
    """Fold one classified item into its story.

    Args:
        story: the story's state so far, None when it has none.
        classified: the item.
        rules: what alerts.
        now: the decision time (UTC), stamped on a new revision.

    Returns:
        The story's new state (None if still none) and the alert to publish, if any.
    """
    if (
        not classified.relevant
        or not classified.events
        or (classified.relevance < rules.min_relevance)
    ):
        return story, None
    severity = rules.severities.get(classified.events[0].type)
    if severity is None:
        return story, None
    item_id = classified.item.item_id
    if story is None:
        return _open(classified, severity, 1, now)
    if item_id in story.item_revisions:
        replayed = story.item_revisions[item_id] == story.alert.revision
        return story, story.alert if replayed else None
    if classified.item.fetched_at - story.alert.updated_at > rules.window:
        return _open(classified, severity, story.generation + 1, now)
    revision = story.alert.revision + 1
    sources = (*story.alert.sources, _source(classified))
    severity = max(story.base_severity or story.alert.severity, severity, key=lambda s: s.rank)
    alert = story.alert.model_copy(
        update={
            "sources": sources,
            "updated_at": now,
            "revision": revision,
            "severity": _escalated(severity, len({s.outlet for s in sources}), rules),
        }
    )
    return replace(
        story,
        alert=alert,
        item_revisions={**story.item_revisions, item_id: revision},
        feed_tags=story.feed_tags | set(classified.item.feed_tags),
        base_severity=severity,
    ), alert
