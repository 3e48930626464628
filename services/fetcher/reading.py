"""One feed body read into the messages to publish: parse → after_response → encode.

Feed bodies come from servers nobody vets, and parsing touches feedparser, URL
handling and date arithmetic, each with its own ways to fail on odd input (a
port that is not a number, a URL with a broken IPv6 literal). Whatever such an
input raises is that feed's failure, never the process's: it leaves here as a
:class:`FeedError` naming the exception, and the poll that read it is counted,
logged and backed off like any other failed poll.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from dohawatch.shared.codec import Outgoing, encode
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.errors import FeedError

from .core import FeedState, ParsedFeed, PollDecision, Reply, Schedule, after_response
from .parse import parse_feed

__all__ = ["Read", "newest", "read_body"]


@dataclass(frozen=True, slots=True)
class Read:
    """A body read: the parsed feed, the decision, and the messages to send."""

    parsed: ParsedFeed
    decision: PollDecision
    messages: list[Outgoing]


def newest(parsed: ParsedFeed, limit: int | None) -> ParsedFeed:
    """``parsed`` with at most ``limit`` entries: the latest by date, undated ones
    after the dated, each group in the feed's order (feeds list newest first)."""
    if limit is None or len(parsed.entries) <= limit:
        return parsed
    by_date = sorted(
        enumerate(parsed.entries),
        key=lambda pair: (
            pair[1].published_at is None,
            -(pair[1].published_at.timestamp() if pair[1].published_at else 0.0),
            pair[0],
        ),
    )
    kept = sorted(by_date[:limit])  # back in feed order
    return replace(parsed, entries=tuple(entry for _, entry in kept))


def read_body(
    body: bytes,
    reply: Reply,
    *,
    state: FeedState,
    feed: FeedConfig,
    now: datetime,
    schedule: Schedule,
    topic: str,
    max_entries: int | None = None,
) -> Read:
    """Parse ``body``, decide what is new among its ``max_entries`` newest entries
    and encode it for ``topic``. Pure and synchronous: the service runs it in a
    worker thread, so a huge body never holds up the other feeds' schedules.

    Raises:
        FeedError: the body is no feed, or an entry in it could not be read;
            ``outcome`` is ``parse`` or ``invalid``.
    """
    try:
        parsed = newest(
            parse_feed(body, base_url=reply.url, content_type=reply.content_type, fetched_at=now),
            max_entries,
        )
        decision = after_response(state, feed, reply, now=now, schedule=schedule, parsed=parsed)
        messages = [encode(item, topic) for item in decision.items]
    except FeedError:
        raise
    except Exception as exc:  # one feed's odd entry is that feed's failure (see module doc)
        raise FeedError("invalid", f"unreadable feed content: {type(exc).__name__}: {exc}") from exc
    return Read(parsed, decision, messages)
