"""Reading one feed body (parse → decide → encode): odd input is that feed's
failure or that entry's, never an exception the fetcher did not plan for."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dohawatch.fetcher.core import FeedState, Reply, Schedule
from dohawatch.fetcher.http import ends_a_document
from dohawatch.fetcher.parse import parse_feed
from dohawatch.fetcher.reading import Read, read_body
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.errors import FeedError

NOW = datetime(2025, 7, 24, 18, tzinfo=UTC)
FEED = FeedConfig(url="https://a.example/feed.xml", name="A")


def read(body: bytes, content_type: str = "application/rss+xml", feed: FeedConfig = FEED) -> Read:
    return read_body(
        body,
        Reply(200, feed.url, content_type=content_type, body_hash="h"),
        state=FeedState(feed_key=feed.url, url=feed.url),
        feed=feed,
        now=NOW,
        schedule=Schedule(),
        topic="dohawatch.news.raw",
    )


def rss(*items: dict[str, str], channel: str = "") -> bytes:
    body = "".join(
        "<item>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in item.items()) + "</item>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"{channel}{body}</channel></rss>"
    ).encode()


def atom(*entries: dict[str, str]) -> bytes:
    body = "".join(
        "<entry>"
        + "".join(
            f'<link href="{escape(v, {chr(34): "&quot;"})}"/>'
            if k == "link"
            else f"<{k}>{escape(v)}</{k}>"
            for k, v in e.items()
        )
        + "</entry>"
        for e in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>t</title>{body}</feed>"
    ).encode()


def json_feed(*items: dict[str, object]) -> bytes:
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": list(items)}
    ).encode()


GOOD = {"title": "Israel recalls its team", "link": "https://a.example/1", "guid": "g1"}


@pytest.mark.parametrize(
    "bad",
    [
        {"title": "bad port", "link": "http://a.example:99999/x", "guid": "p1"},
        {"title": "port text", "link": "http://a.example:abc/x", "guid": "p2"},
        {"title": "broken IPv6", "link": "http://[::1/x", "guid": "p3"},
        {
            "title": "far date",
            "link": "https://a.example/d",
            "pubDate": "Mon, 01 Jan 99999 00:00:00 GMT",
        },
    ],
)
def test_one_odd_entry_leaves_the_rest_of_the_feed_readable(bad: dict[str, str]) -> None:
    """An entry with an unusable port, URL or date never stops its feed's other entries."""
    result = read(rss(GOOD, bad))
    assert "Israel recalls its team" in [i.title for i in result.decision.items]
    assert len(result.messages) == len(result.decision.items)


def test_a_json_feed_with_a_malformed_url_is_read() -> None:
    """A JSON Feed item whose URL is no URL keeps its id; the others are read."""
    body = json_feed(
        {"id": "1", "url": "http://[::1", "title": "a"},
        {"id": "2", "url": "https://a.example/2", "title": "b"},
    )
    result = read(body, "application/feed+json")
    assert sorted(i.title for i in result.decision.items) == ["a", "b"]


@pytest.mark.parametrize("body", [b"", b"   \n\t"])
def test_an_empty_body_is_not_a_feed(body: bytes) -> None:
    """An empty 200 body is a failed poll ("parse"), not a successful one with no items."""
    with pytest.raises(FeedError) as raised:
        read(body)
    assert raised.value.outcome == "parse"


def test_a_bare_guid_stays_as_the_feed_wrote_it() -> None:
    """A GUID like "1000" is not resolved against the feed URL, so two feeds never share its id."""
    body = rss({"title": "a", "guid": "1000"})
    (entry,) = parse_feed(body, base_url=FEED.url, content_type=None, fetched_at=NOW).entries
    assert entry.guid == "1000"
    other = FeedConfig(url="https://a.example/other.xml", name="B")
    (mine,) = read(body).decision.items
    (theirs,) = read(body, feed=other).decision.items
    assert mine.item_id != theirs.item_id


def test_relative_links_are_still_resolved_against_the_feed() -> None:
    """A relative <link> becomes an absolute URL under the feed's."""
    (item,) = read(rss({"title": "a", "link": "/news/1", "guid": "x"})).decision.items
    assert item.url == "https://a.example/news/1"


# Text fragments that have broken feed readers: odd ports, schemes, dates, numbers,
# control characters, markup, very long runs.
ODD = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "http://a.example:99999/x",
            "http://a.example:abc/",
            "http://[::1",
            "javascript:alert(1)",
            "//",
            "Mon, 01 Jan 99999 00:00:00 GMT",
            "0000-00-00T00:00:00Z",
            "9" * 40,
            "1.5e308",
            "-1",
            "<![CDATA[x]]>",
            "&#0;&#xD800;",
            "\x00\x01",
            "x" * 5000,
        ]
    ),
)
FIELDS = st.sampled_from(
    ["title", "link", "guid", "description", "pubDate", "ttl", "id", "updated", "summary"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["rss", "atom", "json"]),
    entries=st.lists(st.dictionaries(FIELDS, ODD, max_size=5), min_size=1, max_size=4),
    cut=st.integers(min_value=0, max_value=400),
    noise=st.binary(max_size=8),
)
def test_random_mutated_bodies_raise_only_feed_errors(
    kind: str, entries: list[dict[str, str]], cut: int, noise: bytes
) -> None:
    """Random RSS, Atom and JSON Feed bodies, cut short or spliced with bytes, raise
    nothing but FeedError, within a second each."""
    if kind == "rss":
        body = rss(*entries, channel=f"<ttl>{escape(entries[0].get('ttl', '5'))}</ttl>")
    elif kind == "atom":
        body = atom(*entries)
    else:
        body = json_feed(
            *[
                {
                    "id": e.get("guid"),
                    "url": e.get("link"),
                    "title": e.get("title"),
                    "date_published": e.get("pubDate"),
                }
                for e in entries
            ]
        )
    if cut:
        body = body[: len(body) - cut] + noise
    started = time.perf_counter()
    try:
        result = read(body)
    except FeedError:
        pass
    else:
        assert len(result.messages) == len(result.decision.items)
    assert time.perf_counter() - started < 1.0


def test_a_poll_reads_only_the_newest_entries_it_is_allowed() -> None:
    """With ``max_entries``, the newest entries by date are read, in the feed's order;
    undated entries come after every dated one."""
    items = [
        {
            "title": f"t{i}",
            "link": f"https://a.example/{i}",
            "guid": f"g{i}",
            "pubDate": f"Mon, {1 + i % 28:02d} Jul 2024 {i % 24:02d}:00:00 GMT",
        }
        for i in range(60)
    ]
    items.append({"title": "undated", "link": "https://a.example/u", "guid": "u"})
    body = rss(*items)
    whole = read(body).decision.items
    dated = [i for i in whole if i.title != "undated"]
    newest = sorted(dated, key=lambda i: i.published_at or NOW, reverse=True)[:5]
    capped = read_body(
        body,
        Reply(200, FEED.url, content_type="application/rss+xml", body_hash="h"),
        state=FeedState(feed_key=FEED.url, url=FEED.url),
        feed=FEED,
        now=NOW,
        schedule=Schedule(),
        topic="t",
        max_entries=5,
    ).decision.items
    assert {i.title for i in capped} == {i.title for i in newest}
    assert "undated" not in {i.title for i in capped}


@pytest.mark.parametrize(
    ("body", "whole"),
    [
        (rss(GOOD), True),
        (rss(GOOD) + b"\n\n", True),
        (rss(GOOD)[:-7], False),  # "</rss>" cut off
        (atom({"title": "a", "id": "x"}), True),
        (atom({"title": "a", "id": "x"})[:-3], False),
        (b'<?xml version="1.0"?>\n<!-- c --><rdf:RDF x="1"><item/></rdf:RDF>', True),
        (json_feed({"id": "1", "title": "a"}), True),
        (json_feed({"id": "1", "title": "a"})[:-2], False),
    ],
)
def test_a_body_cut_short_of_its_document_is_recognised(body: bytes, whole: bool) -> None:
    """A body ends a document when it closes its root element or JSON value."""
    assert ends_a_document(body) is whole
