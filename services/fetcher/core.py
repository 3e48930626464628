"""The fetcher's pure core: given a feed's state and what a poll returned, decide
which items are new and what the state becomes. No I/O, no clock.

Flow: ``FeedState`` → (poll) → ``ParsedFeed`` → :func:`decide` → ``PollDecision``
(new ``NewsItem`` s + next ``FeedState``), applied only after the broker acks.

Identity: an entry is new when its ``item_id`` was never seen *and* no seen entry
had the same normalised link and title; so a GUID that changes while link and
title stay is a duplicate. An edited entry (same id, new title or summary) is
not published again: the first version is the one the pipeline alerted on, and
re-publishing edits would re-alert on typo fixes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime

from dohawatch.shared import ids
from dohawatch.shared.events import NewsItem
from dohawatch.shared.settings import FeedConfig

from .parse import Entry, ParsedFeed

__all__ = ["FeedState", "PollDecision", "decide", "next_interval"]

SEEN_LIMIT = 2000  # per feed; more than any feed keeps in its window


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the fetcher remembers about one feed between polls."""

    feed_key: str  # the configured URL; stable across redirects
    url: str  # where to poll now (follows permanent redirects)
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    seen: tuple[str, ...] = ()  # item ids and link+title fingerprints, newest last
    failures: int = 0
    last_success: datetime | None = None
    next_poll: datetime | None = None
    disabled: bool = False  # the server said 410 Gone: never polled again
    pace: float = 1.0  # multiplies the feed's interval: below 1 for busy feeds, above for quiet


@dataclass(frozen=True, slots=True)
class PollDecision:
    """The items to publish and the state to keep once they are acknowledged."""

    items: tuple[NewsItem, ...]
    state: FeedState
    duplicates: int = field(default=0)


def _fingerprint(entry: Entry) -> str:
    basis = f"{ids.normalize_link(entry.link) if entry.link else ''}\n{entry.title.strip().lower()}"
    return "fp-" + hashlib.sha256(basis.encode()).hexdigest()[:24]


def decide(
    state: FeedState,
    feed: FeedConfig,
    parsed: ParsedFeed,
    *,
    body_hash: str,
    etag: str | None,
    last_modified: str | None,
    fetched_at: datetime,
) -> PollDecision:
    """Decide what a successful poll (200) publishes and how the state moves.

    Entries are published oldest first, so consumers see a feed's order.
    """
    seen = set(state.seen)
    fresh: list[str] = []
    items: list[NewsItem] = []
    duplicates = 0
    for entry in reversed(parsed.entries):  # feeds list newest first
        if not entry.link and not entry.title:
            continue
        item_id = ids.item_id(
            state.feed_key,
            guid=entry.guid,
            link=entry.link,
            title=entry.title,
            published=entry.published_at.isoformat() if entry.published_at else None,
        )
        fingerprint = _fingerprint(entry)
        if item_id in seen or fingerprint in seen:
            duplicates += item_id not in seen  # a changed GUID, caught by link+title
            if item_id not in seen:
                fresh.append(item_id)
                seen.add(item_id)
            continue
        seen.update((item_id, fingerprint))
        fresh += [item_id, fingerprint]
        items.append(
            NewsItem(
                item_id=item_id,
                feed_url=state.url,
                source=feed.name,
                url=entry.link or state.url,
                title=entry.title,
                summary=entry.summary,
                published_at=entry.published_at,
                fetched_at=fetched_at,
                language=parsed.language,
                feed_tags=feed.tags,
            )
        )
    kept = (state.seen + tuple(fresh))[-SEEN_LIMIT:]
    new_state = replace(
        state,
        etag=etag,
        last_modified=last_modified,
        body_hash=body_hash,
        seen=kept,
        failures=0,
        last_success=fetched_at,
    )
    return PollDecision(tuple(items), new_state, duplicates)


PACE_RANGE = (0.25, 4.0)


def adapt_pace(pace: float, found_new: bool) -> float:
    """A feed's pace after a successful poll: halved when it had new items (poll a
    busy feed sooner), a quarter slower when it had none; within ``PACE_RANGE``."""
    low, high = PACE_RANGE
    return min(high, max(low, pace * (0.5 if found_new else 1.25)))


def next_interval(
    feed: FeedConfig,
    default: float,
    minimum: float,
    maximum: float,
    failures: int,
    hint: float | None = None,
    pace: float = 1.0,
) -> float:
    """Seconds until the next poll: the feed's interval times its pace (never
    sooner than a server hint such as ``Retry-After``, ``max-age`` or ``<ttl>``),
    doubled per consecutive failure, within [minimum, maximum]."""
    base = max((feed.interval_seconds or default) * pace, hint or 0.0)
    backoff: float = base * 2.0 ** min(failures, 10)
    return min(maximum, max(minimum, backoff))
