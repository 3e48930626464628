"""The notifier's routing decisions: filters, what is news to a route, when it is due."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dohawatch.notifier.routes import (
    Notified,
    due_at,
    matches,
    notify_reason,
    quiet_until,
    retry_delay,
)
from dohawatch.notifier.stories import AlertRules, decide
from dohawatch.shared.config_file import QuietHours, RouteConfig
from dohawatch.shared.events import Alert, AlertSource, Severity

from .test_stories import NOW, classified

ROUTE = RouteConfig(name="desk", sink="console")


def alert(outlets: int = 1, severity: Severity = Severity.HIGH, revision: int = 1) -> Alert:
    sources = tuple(
        AlertSource(outlet=f"o{i}", url=f"https://o{i}.example/x", title="t", published_at=None)
        for i in range(outlets)
    )
    return Alert(
        alert_id="al1-x",
        story_key="st1-x",
        event_type="delegation_withdrawn",
        severity=severity,
        headline="Israel recalls its negotiators from Doha",
        summary="The team returns for consultations.",
        sources=sources,
        first_seen=NOW,
        updated_at=NOW,
        revision=revision,
        evidence=(),
    )


@pytest.mark.parametrize(
    ("route", "tags", "expected"),
    [
        (ROUTE, frozenset(), True),
        (ROUTE.model_copy(update={"event_types": ("agreement_reached",)}), frozenset(), False),
        (ROUTE.model_copy(update={"event_types": ("delegation_withdrawn",)}), frozenset(), True),
        (ROUTE.model_copy(update={"min_severity": Severity.CRITICAL}), frozenset(), False),
        (ROUTE.model_copy(update={"min_severity": Severity.HIGH}), frozenset(), True),
        (ROUTE.model_copy(update={"feed_tags": ("wire",)}), frozenset({"arabic"}), False),
        (ROUTE.model_copy(update={"feed_tags": ("wire",)}), frozenset({"wire", "x"}), True),
        (ROUTE.model_copy(update={"keywords": ("NEGOTIATORS",)}), frozenset(), True),
        (ROUTE.model_copy(update={"keywords": ("Cairo",)}), frozenset(), False),
    ],
)
def test_route_filter(route: RouteConfig, tags: frozenset[str], expected: bool) -> None:
    """Every criterion a route sets must hold: type, severity, feed tag, keyword."""
    assert matches(route, alert(), tags) is expected


def test_a_route_hears_of_a_story_when_it_starts_rises_or_crosses_an_outlet_threshold() -> None:
    """Ten outlets reporting one development make three messages: new, 3 and 10 outlets."""
    rules = AlertRules({"delegation_withdrawn": Severity.HIGH})
    story, last, sent = None, None, []
    for n in range(10):
        story, revision = decide(story, classified(f"i{n}", f"outlet{n}"), rules, NOW)
        assert revision is not None
        reason = notify_reason(ROUTE, revision, last)
        if reason:
            sent.append(reason)
            last = Notified(revision.revision, revision.severity.rank, n + 1)
    assert sent == ["new", "outlets>=3", "outlets>=10"]


def test_severity_rise_is_news_and_replays_are_not() -> None:
    """A more severe revision is sent; an old or equal revision never is."""
    last = Notified(revision=2, severity_rank=Severity.HIGH.rank, outlets=2)
    assert notify_reason(ROUTE, alert(2, Severity.CRITICAL, revision=3), last) == "severity"
    assert notify_reason(ROUTE, alert(2, Severity.HIGH, revision=3), last) is None
    assert notify_reason(ROUTE, alert(5, Severity.CRITICAL, revision=2), last) is None


def test_one_outlet_reporting_twice_does_not_count_twice() -> None:
    """Corroboration counts independent outlets, not items."""
    rules = AlertRules({"delegation_withdrawn": Severity.HIGH})
    story, _ = decide(None, classified("a", "wire"), rules, NOW)
    story, _ = decide(story, classified("b", "wire"), rules, NOW)
    _, third = decide(story, classified("c", "daily"), rules, NOW)
    assert third is not None
    assert notify_reason(ROUTE, third, Notified(1, Severity.HIGH.rank, 1)) is None


def test_escalation_raises_severity_one_step_once() -> None:
    """With escalate_at_outlets=3 a medium story becomes high at three outlets, and stays high."""
    rules = AlertRules({"delegation_withdrawn": Severity.MEDIUM}, escalate_at_outlets=3)
    story, seen = None, []
    for n in range(5):
        story, revision = decide(story, classified(f"i{n}", f"o{n}"), rules, NOW)
        assert revision is not None
        seen.append(revision.severity)
    assert seen == [Severity.MEDIUM] * 2 + [Severity.HIGH] * 3


def test_a_story_quiet_past_its_window_starts_a_new_alert() -> None:
    """After the window without sources, the next item opens a new alert id at revision 1."""
    rules = AlertRules({"delegation_withdrawn": Severity.HIGH}, window=timedelta(hours=12))
    story, first = decide(None, classified("a", "wire"), rules, NOW)
    late = classified("b", "daily")
    late = late.model_copy(
        update={"item": late.item.model_copy(update={"fetched_at": NOW + timedelta(hours=13)})}
    )
    _, again = decide(story, late, rules, NOW + timedelta(hours=13))
    assert first is not None
    assert again is not None
    assert again.revision == 1
    assert again.alert_id != first.alert_id


DOHA_NIGHT = QuietHours(start=time(22), end=time(7), timezone="Asia/Qatar")  # UTC+3


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (datetime(2025, 7, 24, 20, 30, tzinfo=UTC), datetime(2025, 7, 25, 4, tzinfo=UTC)),
        (datetime(2025, 7, 24, 2, 0, tzinfo=UTC), datetime(2025, 7, 24, 4, tzinfo=UTC)),
        (datetime(2025, 7, 24, 4, 0, tzinfo=UTC), None),
        (datetime(2025, 7, 24, 18, 59, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_wrap_midnight_in_the_routes_zone(now: datetime, until: datetime) -> None:
    """22:00-07:00 Doha time holds from 19:00 to 04:00 UTC the next morning."""
    assert quiet_until(DOHA_NIGHT, now) == until


def test_quiet_hours_hold_all_but_breakthrough_severity() -> None:
    """In quiet hours a medium alert waits for the morning; a high one goes now."""
    route = ROUTE.model_copy(update={"quiet_hours": DOHA_NIGHT})
    night = datetime(2025, 7, 24, 21, tzinfo=UTC)
    assert due_at(route, alert(severity=Severity.MEDIUM), night) == datetime(
        2025, 7, 25, 4, tzinfo=UTC
    )
    assert due_at(route, alert(severity=Severity.HIGH), night) == night


def test_digest_routes_are_due_at_the_next_boundary() -> None:
    """A 30-minute digest is due at the next half hour, the same for every revision in it."""
    route = ROUTE.model_copy(update={"digest_minutes": 30})
    due = datetime(2025, 7, 24, 18, 30, tzinfo=UTC)
    assert due_at(route, alert(), datetime(2025, 7, 24, 18, 1, tzinfo=UTC)) == due
    assert due_at(route, alert(), datetime(2025, 7, 24, 18, 29, 59, tzinfo=UTC)) == due


@given(
    attempt=st.integers(1, 30),
    retry_after=st.none() | st.floats(0, 3600),
    jitter=st.floats(0.5, 1.0),
)
def test_retry_delay_is_bounded_and_honours_retry_after(
    attempt: int, retry_after: float | None, jitter: float
) -> None:
    """Backoff never exceeds its cap, unless the server asked for longer; never less than asked."""
    delay = retry_delay(attempt, 2.0, 300.0, retry_after, jitter)
    assert delay >= (retry_after or 0.0)
    assert delay <= max(300.0, retry_after or 0.0)
    if retry_after is None:
        assert delay == pytest.approx(min(300.0, 2.0 * 2 ** (attempt - 1)) * jitter)
