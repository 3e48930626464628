"""Feed parsing: JSON Feed, RSS variants, malformed bodies and date normalisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import urljoin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dohawatch.fetcher.parse import _absolute, parse_feed
from dohawatch.shared.errors import FeedError

FETCHED = datetime(2025, 7, 24, 18, 0, tzinfo=UTC)
BASE = "https://outlet.example/feeds/main.json"


def _parse(body: bytes, content_type: str | None = None):  # type: ignore[no-untyped-def]
    return parse_feed(body, base_url=BASE, content_type=content_type, fetched_at=FETCHED)


def test_json_feed_items_become_entries() -> None:
    """JSON Feed 1.1: ids, relative URLs resolved, HTML content made plain, dates in UTC."""
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Outlet",
        "language": "en",
        "items": [
            {
                "id": 42,
                "url": "/2025/07/recall",
                "title": "Israel <b>recalls</b> team",
                "content_html": "<p>The team returns &amp; consults.</p>",
                "date_published": "2025-07-24T17:00:00+03:00",
            },
            {"id": "b", "external_url": "https://x.example/b", "content_text": "text only"},
            "not an object",
        ],
    }
    parsed = _parse(json.dumps(doc).encode(), "application/feed+json")
    first, second = parsed.entries
    assert first.guid == "42"
    assert first.link == "https://outlet.example/2025/07/recall"
    assert first.title == "Israel recalls team"
    assert first.summary == "The team returns & consults."
    assert first.published_at == datetime(2025, 7, 24, 14, 0, tzinfo=UTC)
    assert second.link == "https://x.example/b"
    assert second.summary == "text only"
    assert second.published_at is None
    assert parsed.malformed, "the non-object item is counted as malformed"
    assert parsed.language == "en"


def test_json_that_is_not_a_feed_is_an_error() -> None:
    """A JSON body without the JSON Feed version is not taken for a feed."""
    with pytest.raises(FeedError, match="parse"):
        _parse(b'{"hello": "world"}', "application/json")


@pytest.mark.parametrize(
    "body",
    [
        # RSS 0.91
        b'<rss version="0.91"><channel><title>t</title><item><title>A &amp; B</title>'
        b"<link>https://o.example/1</link></item></channel></rss>",
        # RSS 1.0 (RDF)
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        b'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><title>t</title></channel>'
        b'<item rdf:about="https://o.example/1"><title>A &amp; B</title>'
        b"<link>https://o.example/1</link></item></rdf:RDF>",
        # Atom 0.3
        b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>t</title><entry>'
        b'<title>A &amp; B</title><link rel="alternate" href="https://o.example/1"/>'
        b"<id>tag:o,1</id></entry></feed>",
        # malformed: an unclosed tag and a control character, still one entry
        b"<rss version='2.0'><channel><title>t</title><item><title>A &amp; B\x01</title>"
        b"<link>https://o.example/1</link></item><item><title>broken",
    ],
)
def test_older_and_broken_formats_still_yield_their_entries(body: bytes) -> None:
    """RSS 0.91, RSS 1.0, Atom 0.3 and a malformed RSS body each give the entry."""
    parsed = _parse(body)
    assert parsed.entries[0].title.startswith("A & B")
    assert parsed.entries[0].link == "https://o.example/1"


@given(
    when=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15),
)
def test_rss_dates_normalise_to_utc_and_future_ones_to_the_fetch_time(
    when: datetime, offset_minutes: int
) -> None:
    """Any zone offset reads back as the same UTC instant; a date after the fetch is clamped."""
    when = when.replace(microsecond=0)
    local = when.astimezone(timezone(timedelta(minutes=offset_minutes)))
    body = (
        "<rss version='2.0'><channel><title>t</title><item><title>x</title>"
        f"<guid>g</guid><pubDate>{format_datetime(local)}</pubDate></item></channel></rss>"
    ).encode()
    (entry,) = _parse(body).entries
    assert entry.published_at == min(when, FETCHED)


def test_a_body_that_lies_about_its_encoding_is_still_read() -> None:
    """Declared UTF-8 but sent as Latin-1: the entry is read, its text right, and the
    feed is flagged malformed so the fetcher can count it."""
    body = (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        "<item><title>Café talks in Doha</title><guid>g</guid></item></channel></rss>"
    ).encode("latin-1")
    parsed = _parse(body, "application/rss+xml; charset=utf-8")
    assert [e.title for e in parsed.entries] == ["Café talks in Doha"]
    assert parsed.malformed


@settings(max_examples=500)
@given(
    st.text(alphabet=st.sampled_from(list("ab/:?#;[]%. \t\n\x00é")), max_size=16),
    st.sampled_from(["http://", "https://", "HTTP://", "", "//", "ftp://"]),
    st.sampled_from(["https://a.example/f/feed.xml", "http://a.example/"]),
)
def test_links_resolve_as_urljoin_resolves_them(tail: str, scheme: str, base: str) -> None:
    """The shortcut for absolute links gives what urljoin gives, for any link."""
    link = scheme + tail
    try:
        expected: str | None = urljoin(base, link.strip()) if link else None
    except ValueError:
        expected = None
    assert _absolute(base, link) == expected
