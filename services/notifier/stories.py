"""The notifier's pure core: classified items become stories, stories become alerts.

A story is every relevant item with the same ``story_key``. Its first alerting
item raises revision 1; each further item from the story makes the next
revision, with the new source added. An item seen before (a replay) decides
nothing new: it re-issues the story's current alert only if it is the item that
made that revision, so a crash between produce and commit is repaired with the
same ``alert_id`` and revision.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from dohawatch.shared import ids
from dohawatch.shared.events import Alert, AlertSource, ClassifiedItem, Severity

__all__ = ["AlertRules", "Story", "decide"]


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Which classified items raise alerts, and how severe (topic pack defaults)."""

    severities: dict[str, Severity]  # event type → severity; types not listed never alert
    min_relevance: float = 0.5


@dataclass(frozen=True, slots=True)
class Story:
    """What the notifier remembers about one story."""

    alert: Alert
    item_revisions: dict[str, int] = field(default_factory=dict)  # item_id → revision it made


def _source(c: ClassifiedItem) -> AlertSource:
    return AlertSource(
        outlet=c.item.source, url=c.item.url, title=c.item.title, published_at=c.item.published_at
    )


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
    primary = classified.events[0]
    severity = rules.severities.get(primary.type)
    if severity is None:
        return story, None
    item_id = classified.item.item_id
    if story is None:
        alert = Alert(
            alert_id=ids.alert_id(classified.story_key),
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
        return Story(alert, {item_id: 1}), alert
    if item_id in story.item_revisions:
        replayed = story.item_revisions[item_id] == story.alert.revision
        return story, story.alert if replayed else None
    revision = story.alert.revision + 1
    alert = story.alert.model_copy(
        update={
            "sources": (*story.alert.sources, _source(classified)),
            "updated_at": now,
            "revision": revision,
            "severity": max(story.alert.severity, severity, key=lambda s: s.rank),
        }
    )
    return replace(
        story, alert=alert, item_revisions={**story.item_revisions, item_id: revision}
    ), alert
