"""Feed bodies to plain entries: feedparser for RSS 0.9x-2.0, Atom and the rest."""

from __future__ import annotations

import calendar
import html
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import feedparser
from dohawatch.shared.errors import FeedError

__all__ = ["Entry", "ParsedFeed", "parse_feed", "plain_text"]


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


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(markup: str) -> str:
    """Markup to plain text: tags dropped, entities decoded, whitespace folded."""
    if "<" not in markup and "&" not in markup:
        return " ".join(markup.split())
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return " ".join(html.unescape("".join(extractor.parts)).split())


def _date(entry: Any, fetched_at: datetime) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    # feedparser normalises to a UTC struct_time; a date in the future is a
    # publisher's clock or time-zone mistake, so the fetch time is the best bound.
    when = datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return min(when, fetched_at)


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
    headers = {"content-location": base_url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(body, response_headers=headers)
    if parsed.bozo and not parsed.entries:
        raise FeedError("parse", f"not a feed: {parsed.get('bozo_exception')}", retriable=True)
    entries = tuple(
        Entry(
            guid=e.get("id") or None,
            link=e.get("link") or None,
            title=plain_text(e.get("title", "")),
            summary=plain_text(e.get("summary", "")),
            published_at=_date(e, fetched_at),
        )
        for e in parsed.entries
    )
    ttl = parsed.feed.get("ttl")
    ttl_seconds = float(ttl) * 60 if ttl and str(ttl).isdigit() else None
    return ParsedFeed(entries, bool(parsed.bozo), ttl_seconds, parsed.feed.get("language"))
