"""Which alert revisions each route hears about, and when: pure decisions.

The alerts topic carries every revision. People do not want every revision: a
route hears about a story when it starts, when its severity rises, and when the
number of independent outlets crosses one of the route's thresholds (3 and 10 by
default). Quiet hours hold all but urgent revisions until they end; a digest
route collects revisions and sends them together at the next boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dohawatch.shared.config_file import QuietHours, RouteConfig
from dohawatch.shared.events import Alert

from .stories import outlet_count

__all__ = ["Notified", "due_at", "matches", "notify_reason", "quiet_until", "retry_delay"]


@dataclass(frozen=True, slots=True)
class Notified:
    """What a route was last told about one alert."""

    revision: int
    severity_rank: int
    outlets: int


def matches(route: RouteConfig, alert: Alert, feed_tags: frozenset[str]) -> bool:
    """Whether ``alert`` passes the route's filter (every set criterion must hold)."""
    if route.event_types and alert.event_type not in route.event_types:
        return False
    if alert.severity.rank < route.min_severity.rank:
        return False
    if route.feed_tags and not feed_tags & set(route.feed_tags):
        return False
    if route.keywords:
        text = " ".join([alert.headline, alert.summary, *(s.title for s in alert.sources)]).lower()
        return any(k.lower() in text for k in route.keywords)
    return True


def notify_reason(route: RouteConfig, alert: Alert, last: Notified | None) -> str | None:
    """Why the route should hear about this revision, or None if it should not.

    Args:
        route: the route.
        alert: the revision (it already passed ``matches``).
        last: what the route was last told about this alert, None if nothing.

    Returns:
        ``new``, ``severity`` or ``outlets>=N``; None for a revision that tells
        the route's readers nothing new, or one it has already had.
    """
    outlets = outlet_count(alert)
    if last is None:
        return "new"
    if alert.revision <= last.revision:
        return None
    if alert.severity.rank > last.severity_rank:
        return "severity"
    crossed = [t for t in route.outlet_thresholds if last.outlets < t <= outlets]
    return f"outlets>={max(crossed)}" if crossed else None


def quiet_until(quiet: QuietHours, now: datetime) -> datetime | None:
    """The end of the quiet window ``now`` falls in (UTC), or None outside it."""
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    today = local.date()
    t = local.time().replace(tzinfo=None)
    if quiet.start <= quiet.end:
        inside = quiet.start <= t < quiet.end
        end_day = today
    else:  # the window wraps past midnight
        inside = t >= quiet.start or t < quiet.end
        end_day = today + timedelta(days=1) if t >= quiet.start else today
    if not inside:
        return None
    return datetime.combine(end_day, quiet.end, tzinfo=zone).astimezone(UTC)


def due_at(route: RouteConfig, alert: Alert, now: datetime) -> datetime:
    """When the route should deliver a revision decided at ``now``.

    Quiet hours hold it to their end unless its severity breaks through; a
    digest route delivers at the next boundary of its period (aligned to the
    Unix epoch, so every replica and restart agrees on it).
    """
    due = now
    quiet = route.quiet_hours
    if quiet and alert.severity.rank < quiet.breakthrough.rank:
        due = quiet_until(quiet, now) or now
    if route.digest_minutes:
        period = route.digest_minutes * 60
        boundary = (math.floor(due.timestamp() / period) + 1) * period
        due = datetime.fromtimestamp(boundary, UTC)
    return due


def retry_delay(
    attempt: int, base: float, cap: float, retry_after: float | None, jitter: float
) -> float:
    """Seconds to wait before retry ``attempt`` (1 for the first retry).

    Exponential with a cap, scaled by ``jitter`` in [0.5, 1] so that many
    failed deliveries do not retry in step; a server's ``Retry-After`` wins
    when it asks for longer.
    """
    delay = min(cap, base * 2.0 ** (attempt - 1)) * jitter
    return max(delay, retry_after or 0.0)
