"""The fetcher's pure core: given a feed's state and what a poll returned, decide
what to publish, what the state becomes and when to poll next. No I/O; the
clock is an argument.

Every poll ends in one :class:`PollDecision`, from one of two functions:

    fetch → FeedError ─────────────────────────────→ after_failure
    fetch → Reply → needs_body? ─ no ──────────────→ after_response
                                └ yes → parse → ParsedFeed → after_response

=====================  ==========  ===========================================
reply                  outcome     state
=====================  ==========  ===========================================
304                    ``304``     success: failures reset, slower pace
200, same body hash    unchanged   success, as for 304
200, new body          ``200``     new entries published (:func:`decide`),
                                   validators kept; pace faster if any was new
301/308 on every hop   (any)       ``url`` moves to the new location
410                    gone        failure; the feed is disabled for good
429, 503               4xx, 5xx    failure; next poll no sooner than Retry-After
other status           Nxx         failure
FeedError              its label   failure; a retriable one backs off, doubling
                                   per failure in a row, a permanent one (an
                                   address refused, a body over the cap) waits
                                   the longest interval
=====================  ==========  ===========================================

The next poll is the feed's interval times its pace, never sooner than the
server's hints (``Cache-Control: max-age``, RSS ``<ttl>``, ``Retry-After``),
within the schedule's bounds. A decision is applied only after the broker
acknowledged its items.

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
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from dohawatch.shared import ids
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.errors import FeedError
from dohawatch.shared.events import SUMMARY_CHARS, TITLE_CHARS, NewsItem
from dohawatch.shared.http_hints import max_age_seconds, retry_after_seconds
from dohawatch.shared.settings import Settings

__all__ = [
    "Entry",
    "FeedState",
    "ParsedFeed",
    "PollDecision",
    "Reply",
    "Schedule",
    "after_failure",
    "after_response",
    "decide",
    "first_poll_offsets",
    "needs_body",
    "next_interval",
]

SEEN_ENTRIES = 2000
"""Entries remembered per feed beyond those it still lists (those are always kept)."""
TRUNCATED = "…"
"""Ends a title or summary cut to the contract's TITLE_CHARS or SUMMARY_CHARS."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as the feed gave it, with text already plain."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """The entries of one feed body, and whether the parser had to recover."""

    entries: tuple[Entry, ...]
    malformed: bool
    ttl_seconds: float | None
    language: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """What one poll's GET answered, after redirects, as the core reads it."""

    status: int
    url: str  # where the answer came from
    moved_to: str | None = None  # the new feed URL when every hop was a permanent redirect
    etag: str | None = None
    last_modified: str | None = None
    cache_control: str | None = None
    retry_after: str | None = None
    content_type: str | None = None
    body_hash: str | None = None  # of a 200's body


@dataclass(frozen=True, slots=True)
class Schedule:
    """How often feeds are polled, and when a feed counts as failing."""

    interval: float = 300.0  # for feeds that set none
    minimum: float = 60.0
    maximum: float = 3600.0
    failing_after: int = 5  # failures in a row that raise ``feed_failing``

    @classmethod
    def of(cls, settings: Settings) -> Schedule:
        """The schedule the settings configure."""
        return cls(
            settings.fetch_interval_seconds,
            settings.fetch_min_interval_seconds,
            settings.fetch_max_interval_seconds,
            settings.fetch_failing_after,
        )


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
    """How one poll ended: the items to publish and the state to keep once the
    broker acknowledged them, with what the service logs and counts."""

    items: tuple[NewsItem, ...]
    state: FeedState
    duplicates: int = field(default=0)
    rejected: int = field(default=0)  # entries whose link or text the contract refuses
    outcome: str = "200"  # the metrics label: 200, 304, unchanged, gone, 4xx, timeout...
    error: str | None = None  # why the poll failed; None when it succeeded
    alarm: str | None = None  # "feed_failing" or "feed_disabled" when this poll crossed the line
    malformed: bool = False  # the parser had to recover the body


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one ``TRUNCATED`` if it was cut."""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def _derived_title(summary: str) -> str:
    """A title for an entry that has none (RSS 2.0 allows description-only items):
    the summary's first sentence, at most 120 characters."""
    first = summary.split(". ", 1)[0].strip()
    return cap(first, 120)


def _fingerprint(link: str | None, title: str) -> str:
    basis = f"{ids.normalize_link(link) if link else ''}\n{title.strip().lower()}"
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
            fingerprint = _fingerprint(entry.link, title)
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


def needs_body(state: FeedState, reply: Reply) -> bool:
    """Whether ``reply`` must be parsed before :func:`after_response`: a 200 whose
    body differs from the last one read."""
    return reply.status == 200 and reply.body_hash != state.body_hash


def after_response(
    state: FeedState,
    feed: FeedConfig,
    reply: Reply,
    *,
    now: datetime,
    schedule: Schedule,
    parsed: ParsedFeed | None = None,
) -> PollDecision:
    """How a poll that got an HTTP answer ends (the table in the module doc).

    Args:
        parsed: the body, parsed; required when :func:`needs_body` says so.
    """
    state = moved(state, reply)
    hint = max_age_seconds(reply.cache_control)
    match reply.status:
        case 304:
            return _succeeded(state, feed, "304", now, schedule, hint)
        case 200 if reply.body_hash == state.body_hash:
            return _succeeded(state, feed, "unchanged", now, schedule, hint)
        case 200:
            if parsed is None:
                raise ValueError("a changed 200 needs its parsed body (see needs_body)")
            found = decide(
                state,
                feed,
                parsed,
                body_hash=reply.body_hash or "",
                etag=reply.etag,
                last_modified=reply.last_modified,
                fetched_at=now,
            )
            hint = max(hint or 0.0, parsed.ttl_seconds or 0.0) or None
            return replace(
                _succeeded(found.state, feed, "200", now, schedule, hint, bool(found.items)),
                items=found.items,
                duplicates=found.duplicates,
                rejected=found.rejected,
                malformed=parsed.malformed,
            )
        case 410:
            gone = FeedError("gone", "HTTP 410 Gone: the feed is disabled", retriable=False)
            return after_failure(
                replace(state, disabled=True), feed, gone, now=now, schedule=schedule
            )
        case 429 | 503:
            busy = FeedError(f"{reply.status // 100}xx", f"HTTP {reply.status}")
            wait = retry_after_seconds(reply.retry_after, now)
            return after_failure(state, feed, busy, now=now, schedule=schedule, hint=wait)
        case status:
            failed = FeedError(f"{status // 100}xx", f"HTTP {status}")
            return after_failure(state, feed, failed, now=now, schedule=schedule, hint=hint)


def after_failure(
    state: FeedState,
    feed: FeedConfig,
    error: FeedError,
    *,
    now: datetime,
    schedule: Schedule,
    hint: float | None = None,
) -> PollDecision:
    """How a failed poll ends: one more failure in a row, and the next poll backed
    off; a permanent failure (``error.retriable`` false) waits the longest interval."""
    state = replace(state, failures=state.failures + 1)
    if error.retriable:
        interval = next_interval(
            feed,
            schedule.interval,
            schedule.minimum,
            schedule.maximum,
            state.failures,
            hint,
            state.pace,
        )
    else:
        interval = schedule.maximum
    alarm = None
    if state.disabled:
        alarm = "feed_disabled"
    elif state.failures == schedule.failing_after:
        alarm = "feed_failing"
    return PollDecision(
        (),
        replace(state, next_poll=now + timedelta(seconds=interval)),
        outcome=error.outcome,
        error=str(error),
        alarm=alarm,
    )


def moved(state: FeedState, reply: Reply) -> FeedState:
    """``state`` polling where ``reply`` says the feed moved for good, if it did."""
    return replace(state, url=reply.moved_to) if reply.moved_to else state


def _succeeded(
    state: FeedState,
    feed: FeedConfig,
    outcome: str,
    now: datetime,
    schedule: Schedule,
    hint: float | None,
    found_new: bool = False,
) -> PollDecision:
    pace = adapt_pace(state.pace, found_new)
    interval = next_interval(
        feed, schedule.interval, schedule.minimum, schedule.maximum, 0, hint, pace
    )
    state = replace(
        state, failures=0, last_success=now, pace=pace, next_poll=now + timedelta(seconds=interval)
    )
    return PollDecision((), state, outcome=outcome)


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
    """Seconds until the next poll: the feed's interval times its pace, doubled per
    consecutive failure, never sooner than a server hint (``Retry-After``,
    ``max-age`` or ``<ttl>``: the server's word is a floor, not doubled), within
    [minimum, maximum]."""
    backoff: float = (feed.interval_seconds or default) * pace * 2.0 ** min(failures, 10)
    return min(maximum, max(minimum, backoff, hint or 0.0))
