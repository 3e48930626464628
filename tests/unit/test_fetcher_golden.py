"""The fetcher's fast parsing path against feedparser: field for field the same,
or declined.

The corpus is feedparser's own test suite (well-formed, ill-formed, encodings,
entities, sanitiser cases), fetched from its source distribution by
``make test`` into ``.cache/feedparser-tests``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dohawatch.demo.feeds import _atom, _rss, load_replay
from dohawatch.fetcher.core import ParsedFeed
from dohawatch.fetcher.fastparse import Declined, parse_fast
from dohawatch.fetcher.parse import parse_feed, parse_with_feedparser, resolved
from dohawatch.shared.errors import FeedError

CORPUS = Path(__file__).resolve().parents[2] / ".cache" / "feedparser-tests"
NOW = datetime(2031, 1, 1, tzinfo=UTC)
BASE = "https://example.com/feeds/main.xml"
CONTENT_TYPES = (None, "application/rss+xml", "text/xml", "application/xml; charset=utf-8")


def both(body: bytes, content_type: str | None) -> tuple[ParsedFeed | Declined, ParsedFeed | None]:
    """What the fast path and feedparser make of ``body`` (None: feedparser found no feed)."""
    fast = parse_fast(body, content_type=content_type, fetched_at=NOW)
    try:
        slow = parse_with_feedparser(body, base_url=BASE, content_type=content_type, fetched_at=NOW)
    except FeedError:
        slow = None
    if isinstance(fast, ParsedFeed):
        fast = resolved(fast, BASE)
    return fast, slow


@pytest.mark.skipif(
    not (CORPUS / ".fetched").exists(),
    reason="feedparser's test corpus is fetched by `make test` (make corpus)",
)
def test_the_fast_path_reads_feedparsers_corpus_as_feedparser_does_or_declines() -> None:
    """Every feed of feedparser's corpus, under four Content-Types: where the fast
    path reads it, the entries, TTL and language equal feedparser's; and it reads
    a third of them (the rest are RSS 0.9x, Atom 0.3, broken XML, other encodings,
    namespaced extensions)."""
    files = sorted(CORPUS.rglob("*.xml"))
    assert len(files) > 2000
    taken, differ = 0, []
    for path in files:
        body = path.read_bytes()
        for content_type in CONTENT_TYPES:
            fast, slow = both(body, content_type)
            if isinstance(fast, Declined):
                continue
            taken += 1
            if fast != slow:
                differ.append(f"{path.relative_to(CORPUS)} ({content_type})")
    assert differ == []
    share = taken / (len(files) * len(CONTENT_TYPES))
    assert share > 0.25, f"the fast path read {share:.0%} of the corpus"


def test_the_usual_feeds_take_the_fast_path() -> None:
    """The demo's RSS and Atom feeds, as outlets serve them, are read by the fast
    path, and parse_feed gives what feedparser gives."""
    _outlets, items = load_replay()
    outlet = {"name": "X", "site": "https://x.example", "format": "rss"}
    for body in (_rss(outlet, items[:20]), _atom(outlet, items[:20])):
        fast, slow = both(body, "application/xml")
        assert isinstance(fast, ParsedFeed), fast
        assert fast == slow
        assert parse_feed(body, base_url=BASE, content_type=None, fetched_at=NOW) == slow


def test_a_declined_body_says_why() -> None:
    """A body the fast path leaves to feedparser comes back with the reason."""
    media = b"<media:title xmlns:media='http://search.yahoo.com/mrss/'>t</media:title>"
    latin = b"<?xml version='1.0' encoding='iso-8859-1'?>"
    cases = {
        b"<rss version='2.0'><channel><item><title>a</title>": "not well-formed",
        b"<rss version='2.0'><channel><item>" + media + b"</item></channel></rss>": "does not read",
        latin + b"<rss version='2.0'><channel/></rss>": "encoding",
        b"<feed xmlns='http://purl.org/atom/ns#'/>": "format",
    }
    for body, reason in cases.items():
        declined = parse_fast(body, content_type=None, fetched_at=NOW)
        assert isinstance(declined, Declined)
        assert reason in declined.reason


# --- generated feeds: the same, or declined -----------------------------------------

TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"),
    max_size=40,
).filter(lambda s: all(c in "\t\n\r" or ord(c) >= 0x20 for c in s))
MARKUP = [
    "<p>",
    "</p>",
    "<b>x</b>",
    "<br/>",
    "<BR>",
    "<img src=x.png>",
    "<a href='/r?a=1&amp;b=2' title=\"t\">l</a>",
    "<a title='a>b'>",
    "<div class=c>",
    "</ p>",
    "<>",
    " > ",
    "&amp;",
    "&lt;",
    "&nbsp;",
    "&foo;",
    "&#128;",
    "&#x41;",
    "&",
    "<script>s</script>",
    "<style>p{}</style>",
    "<!-- c -->",
    "<![CDATA[x]]>",
]
HTML = st.lists(st.one_of(TEXT, st.sampled_from(MARKUP)), max_size=6).map("".join)
LINK = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "/a",
            "a?b=1&c=2",
            "https://x.example/1",
            "http:///x.example/y",
            "",
            " https://x.example/z ",
        ]
    ),
)
DATE = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
)


@st.composite
def entries(draw: st.DrawFn) -> dict[str, object]:
    return {
        "title": draw(TEXT),
        "summary": draw(HTML),
        "link": draw(LINK),
        "guid": draw(st.one_of(st.none(), TEXT)),
        "permalink": draw(st.booleans()),
        "date": draw(DATE),
        "offset": draw(st.sampled_from([0, 60, -330])),
        "media": draw(st.booleans()),
    }


def rss(items: list[dict[str, object]]) -> bytes:
    parts = []
    for item in items:
        body = f"<title>{escape(str(item['title']))}</title>"
        body += f"<description>{escape(str(item['summary']))}</description>"
        if item["link"] is not None:
            body += f"<link>{escape(str(item['link']))}</link>"
        if item["guid"] is not None:
            permalink = "" if item["permalink"] else ' isPermaLink="false"'
            body += f"<guid{permalink}>{escape(str(item['guid']))}</guid>"
        if isinstance(item["date"], datetime):
            zone = timedelta(minutes=int(str(item["offset"])))
            local = item["date"].astimezone(UTC).replace(tzinfo=None) + zone
            sign = "+" if zone >= timedelta(0) else "-"
            minutes = abs(int(str(item["offset"])))
            stamp = f"{local:%a, %d %b %Y %H:%M:%S} {sign}{minutes // 60:02d}{minutes % 60:02d}"
            body += f"<pubDate>{stamp}</pubDate>"
        if item["media"]:
            body += '<media:content url="https://x.example/p.jpg" medium="image"/>'
            body += '<media:thumbnail url="https://x.example/t.jpg"/>'
        parts.append(f"<item>{body}</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>'
        f"<ttl>15</ttl><language>en</language>{''.join(parts)}</channel></rss>"
    ).encode()


def atom(items: list[dict[str, object]]) -> bytes:
    parts = []
    for item in items:
        body = f"<title>{escape(str(item['title']))}</title>"
        body += f'<summary type="html">{escape(str(item["summary"]))}</summary>'
        if item["link"] is not None:
            body += f"<link href={quoteattr(str(item['link']))}/>"
        if item["guid"] is not None:
            body += f"<id>{escape(str(item['guid']))}</id>"
        if isinstance(item["date"], datetime):
            body += f"<updated>{item['date']:%Y-%m-%dT%H:%M:%SZ}</updated>"
        parts.append(f"<entry>{body}</entry>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'xml:lang="en_GB"><title>t</title>{"".join(parts)}</feed>'
    ).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entries(), min_size=1, max_size=4), st.sampled_from([rss, atom]))
def test_generated_feeds_read_the_same_on_both_paths_or_are_declined(
    items: list[dict[str, object]], render: object
) -> None:
    """Random titles (any character), HTML summaries, odd links, GUIDs and dates:
    the fast path agrees with feedparser wherever it does not decline."""
    body = render(items)  # type: ignore[operator]
    fast, slow = both(body, "application/xml")
    if isinstance(fast, ParsedFeed):
        assert fast == slow
