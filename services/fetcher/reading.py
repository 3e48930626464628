"""One feed body read into the messages to publish: parse → decide → encode.

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
from dohawatch.shared.errors import FeedError
from dohawatch.shared.settings import FeedConfig

from .core import FeedState, PollDecision, decide
from .parse import ParsedFeed, parse_feed

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
    *,
    state: FeedState,
    feed: FeedConfig,
    base_url: str,
    content_type: str | None,
    body_hash: str,
    etag: str | None,
    last_modified: str | None,
    fetched_at: datetime,
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
            parse_feed(body, base_url=base_url, content_type=content_type, fetched_at=fetched_at),
            max_entries,
        )
        decision = decide(
            state,
            feed,
            parsed,
            body_hash=body_hash,
            etag=etag,
            last_modified=last_modified,
            fetched_at=fetched_at,
        )
        messages = [encode(item, topic) for item in decision.items]
    except FeedError:
        raise
    except Exception as exc:  # one feed's odd entry is that feed's failure (see module doc)
        raise FeedError("invalid", f"unreadable feed content: {type(exc).__name__}: {exc}") from exc
    return Read(parsed, decision, messages)
