"""Feed bodies to plain entries, by the first path that reads them:

1. JSON Feed 1.0/1.1, read directly;
2. well-formed RSS 2.0, RSS 1.0 and Atom 1.0 in the common shapes, read with lxml
   (:mod:`.fastparse`), which gives exactly what feedparser would or declines;
3. feedparser, for everything else: RSS 0.9x, Atom 0.3, broken XML, odd
   encodings, namespaced extensions, HTML and XHTML content.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from dohawatch.shared.errors import FeedError

from .core import Entry, ParsedFeed
from .fastparse import parse_fast
from .text import plain_text

__all__ = ["parse_feed", "parse_with_feedparser", "plain_text", "resolved"]


def _date(entry: Any, fetched_at: datetime) -> datetime | None:
    # dict.get: feedparser's own get maps a missing published_parsed to
    # updated_parsed with a DeprecationWarning; the fallback is spelled out here.
    parsed = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    if not parsed:
        return None
    # feedparser normalises to a UTC struct_time; a date in the future is a
    # publisher's clock or time-zone mistake, so the fetch time is the best bound.
    try:
        when = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):  # a year Python's datetime cannot hold
        return None
    return min(when, fetched_at)


def _iso_date(value: object, fetched_at: datetime) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return min(when, fetched_at)


def _absolute(base_url: str, link: object) -> str | None:
    """``link`` resolved against the feed's URL; None when there is none or it is
    no URL at all (a broken IPv6 literal), which leaves the entry its GUID."""
    if not link or not isinstance(link, str):
        return None
    link = link.strip()
    if _PLAIN_ABSOLUTE.fullmatch(link) and "?#" not in link:
        return link  # what urljoin would return, without parsing it twice
    try:
        return urljoin(base_url, link)
    except ValueError:
        return None


# An absolute http(s) URL that urljoin returns unchanged: a host (not empty), no whitespace or
# controls (stripped or removed), no brackets (checked as IPv6), no ";" (split as
# parameters), not ending in an empty query or fragment (dropped).
_PLAIN_ABSOLUTE = re.compile(r"https?://[^/?#\[\];\x00-\x20\x7f][^\[\];\x00-\x20\x7f]*(?<![?#])")


def _json_feed(body: bytes, base_url: str, fetched_at: datetime) -> ParsedFeed | None:
    """A JSON Feed (https://jsonfeed.org/version/1.1), or None if the body is not one."""
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        return None
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError("parse", "JSON Feed without an items list", retriable=True)
    entries = []
    malformed = False
    for item in items:
        if not isinstance(item, dict):
            malformed = True
            continue
        link = item.get("url") or item.get("external_url")
        summary = item.get("summary") or item.get("content_text") or ""
        if not summary and item.get("content_html"):
            summary = plain_text(str(item["content_html"]))
        entries.append(
            Entry(
                guid=str(item["id"]) if item.get("id") is not None else None,
                link=_absolute(base_url, link),
                title=plain_text(str(item.get("title") or "")),
                summary=plain_text(str(summary)),
                published_at=_iso_date(
                    item.get("date_published") or item.get("date_modified"), fetched_at
                ),
            )
        )
    language = doc.get("language")
    return ParsedFeed(
        tuple(entries), malformed, None, language if isinstance(language, str) else None
    )


def parse_feed(
    body: bytes, *, base_url: str, content_type: str | None, fetched_at: datetime
) -> ParsedFeed:
    """Parse a feed body.

    Args:
        body: the bytes as served.
        base_url: the URL it was fetched from, to resolve relative links.
        content_type: the response's Content-Type, which may declare the charset.
        fetched_at: when it was fetched (UTC); dates after it are clamped to it.

    Raises:
        FeedError: ``parse`` when the body yields no feed at all.
    """
    if not body.strip():
        raise FeedError("parse", "not a feed: the body is empty", retriable=True)
    if (json_feed := _json_feed(body, base_url, fetched_at)) is not None:
        return json_feed
    fast = parse_fast(body, content_type=content_type, fetched_at=fetched_at)
    if isinstance(fast, ParsedFeed):
        return resolved(fast, base_url)
    return parse_with_feedparser(
        body, base_url=base_url, content_type=content_type, fetched_at=fetched_at
    )


def resolved(parsed: ParsedFeed, base_url: str) -> ParsedFeed:
    """``parsed`` with its entries' links resolved against ``base_url``."""
    entries = tuple(
        Entry(e.guid, _absolute(base_url, e.link), e.title, e.summary, e.published_at)
        for e in parsed.entries
    )
    return replace(parsed, entries=entries)


def parse_with_feedparser(
    body: bytes, *, base_url: str, content_type: str | None, fetched_at: datetime
) -> ParsedFeed:
    """A feed body read by feedparser (see :func:`parse_feed`).

    Raises:
        FeedError: ``parse`` when the body yields no feed at all.
    """
    # No Content-Location: given a base, feedparser resolves a bare GUID ("1000")
    # into a URL under the feed's, and two feeds' numeric GUIDs would collide.
    # GUIDs stay as the feed wrote them; links are resolved here.
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(body, response_headers=headers)
    if parsed.bozo and not parsed.entries:
        raise FeedError("parse", f"not a feed: {parsed.get('bozo_exception')}", retriable=True)
    entries = tuple(
        Entry(
            guid=e.get("id") or None,
            link=_absolute(base_url, e.get("link")),
            title=plain_text(e.get("title", "")),
            summary=plain_text(e.get("summary", "")),
            published_at=_date(e, fetched_at),
        )
        for e in parsed.entries
    )
    ttl = parsed.feed.get("ttl")
    ttl_seconds = float(ttl) * 60 if ttl and str(ttl).isdigit() else None
    return ParsedFeed(entries, bool(parsed.bozo), ttl_seconds, parsed.feed.get("language"))
