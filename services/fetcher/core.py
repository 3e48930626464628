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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

from dohawatch.shared import ids
from dohawatch.shared.events import SUMMARY_CHARS, TITLE_CHARS, NewsItem
from dohawatch.shared.settings import FeedConfig

from .parse import Entry, ParsedFeed

__all__ = ["FeedState", "PollDecision", "decide", "first_poll_offsets", "next_interval"]

SEEN_ENTRIES = 2000
"""Entries remembered per feed beyond those it still lists (those are always kept)."""
TRUNCATED = "…"
"""Ends a title or summary cut to the contract's TITLE_CHARS or SUMMARY_CHARS."""


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
    rejected: int = field(default=0)  # entries whose link or text the contract refuses


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one ``TRUNCATED`` if it was cut."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def _derived_title(summary: str) -> str:
    """A title for an entry that has none (RSS 2.0 allows description-only items):
    the summary's first sentence, at most 120 characters."""
    first = summary.split(". ", 1)[0].strip()
    return cap(first, 120)


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
    present: list[str] = []  # ids and fingerprints of every entry the feed lists now
    items: list[NewsItem] = []
    duplicates = rejected = 0
    for entry in reversed(parsed.entries):  # feeds list newest first
        title = cap(entry.title or _derived_title(entry.summary), TITLE_CHARS)
        if not title and not entry.link:
            continue
        try:
            item_id = ids.item_id(
                state.feed_key,
                guid=entry.guid,
                link=entry.link,
                title=title,
                published=entry.published_at.isoformat() if entry.published_at else None,
            )
            fingerprint = _fingerprint(replace(entry, title=title))
            item = NewsItem(
                item_id=item_id,
                feed_url=state.url,
                source=feed.name,
                url=entry.link or state.url,
                title=title,
                summary=cap(entry.summary, SUMMARY_CHARS),
                published_at=entry.published_at,
                fetched_at=fetched_at,
                language=parsed.language,
                feed_tags=feed.tags,
            )
        except ValueError:  # a link that is no URL (port "abc"): this entry alone is left out
            rejected += 1
            continue
        present += [item_id, fingerprint]
        if item_id in seen or fingerprint in seen:
            duplicates += item_id not in seen  # a changed GUID, caught by link+title
            if item_id not in seen:
                fresh.append(item_id)
                seen.add(item_id)
            continue
        seen.update((item_id, fingerprint))
        fresh += [item_id, fingerprint]
        items.append(item)
    # Every entry the feed still lists stays remembered, however long the feed;
    # of those it dropped, the most recent SEEN_ENTRIES.
    listed = set(present)
    older = [key for key in (*state.seen, *fresh) if key not in listed]
    room = max(0, 2 * SEEN_ENTRIES - len(listed))
    kept = tuple(older[-room:] if room else ()) + tuple(dict.fromkeys(present))
    new_state = replace(
        state,
        etag=etag,
        last_modified=last_modified,
        body_hash=body_hash,
        seen=kept,
        failures=0,
        last_success=fetched_at,
    )
    return PollDecision(tuple(items), new_state, duplicates, rejected)


PACE_RANGE = (0.25, 4.0)


def adapt_pace(pace: float, found_new: bool) -> float:
    """A feed's pace after a successful poll: halved when it had new items (poll a
    busy feed sooner), a quarter slower when it had none; within ``PACE_RANGE``."""
    low, high = PACE_RANGE
    return min(high, max(low, pace * (0.5 if found_new else 1.25)))


def first_poll_offsets(feeds: Sequence[FeedConfig], default_interval: float) -> dict[str, float]:
    """Seconds after start at which each feed with no schedule of its own (new, or
    overdue after downtime) is polled first: a host's feeds spread evenly over
    their interval, so 70 feeds on one host queue at its gate one at a time, not
    all at once. Keyed by feed URL; a host's first feed starts at once.
    """
    by_host: dict[str, list[FeedConfig]] = {}
    for feed in feeds:
        by_host.setdefault((urlsplit(feed.url).hostname or "").lower(), []).append(feed)
    offsets = {}
    for same_host in by_host.values():
        for i, feed in enumerate(same_host):
            offsets[feed.url] = i * (feed.interval_seconds or default_interval) / len(same_host)
    return offsets


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
