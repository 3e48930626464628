"""The notifier's pure core: stories and alert revisions."""

from __future__ import annotations

from datetime import UTC, datetime

from dohawatch.notifier.stories import AlertRules, decide
from dohawatch.shared.events import ClassifiedItem, EvidenceSpan, NewsItem, Severity, TaggedEvent

NOW = datetime(2025, 7, 24, 18, tzinfo=UTC)
RULES = AlertRules({"delegation_withdrawn": Severity.HIGH, "agreement_reached": Severity.CRITICAL})


def classified(
    item_id: str, outlet: str, event: str = "delegation_withdrawn", relevant: bool = True
) -> ClassifiedItem:
    item = NewsItem(
        item_id=item_id,
        feed_url="https://f",
        source=outlet,
        url=f"https://{outlet}.example/{item_id}",
        title=f"{outlet} title",
        summary="s",
        published_at=NOW,
        fetched_at=NOW,
    )
    span = EvidenceSpan(field="title", start=0, end=3, text="abc")
    return ClassifiedItem(
        item=item,
        relevant=relevant,
        relevance=0.9 if relevant else 0.1,
        events=(TaggedEvent(type=event, confidence=0.9, evidence=(span,)),),
        entities=(),
        story_key="st1-k",
        classifier_version="t",
    )


def test_first_item_raises_revision_one_and_sources_add_revisions() -> None:
    """One alert per story; each new outlet makes the next revision with its source."""
    story, first = decide(None, classified("a", "wire"), RULES, NOW)
    assert first is not None
    assert first.revision == 1
    assert first.severity is Severity.HIGH
    story, second = decide(story, classified("b", "daily"), RULES, NOW)
    assert second is not None
    assert second.revision == 2
    assert second.alert_id == first.alert_id
    assert [s.outlet for s in second.sources] == ["wire", "daily"]


def test_a_replayed_item_reissues_only_its_own_revision() -> None:
    """After a crash the same item yields the same alert id and revision, never a new one."""
    story, first = decide(None, classified("a", "wire"), RULES, NOW)
    _, replay = decide(story, classified("a", "wire"), RULES, NOW)
    assert replay == first
    story, _ = decide(story, classified("b", "daily"), RULES, NOW)
    _, old = decide(story, classified("a", "wire"), RULES, NOW)
    assert old is None


def test_irrelevant_or_unlisted_items_do_not_alert() -> None:
    """Irrelevant items and event types without a rule raise nothing."""
    assert decide(None, classified("a", "w", relevant=False), RULES, NOW) == (None, None)
    assert decide(None, classified("a", "w", event="public_pressure"), RULES, NOW) == (None, None)


def test_severity_escalates_with_a_more_severe_item() -> None:
    """A later item of higher severity raises the story's severity."""
    story, _ = decide(None, classified("a", "wire"), RULES, NOW)
    _, alert = decide(story, classified("b", "d", event="agreement_reached"), RULES, NOW)
    assert alert is not None
    assert alert.severity is Severity.CRITICAL
