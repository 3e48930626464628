"""The fetcher's pure core: parsing, identity, state and scheduling."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dohawatch.demo.feeds import _atom, _rss, load_replay
from dohawatch.fetcher.core import (
    PACE_RANGE,
    SEEN_ENTRIES,
    TRUNCATED,
    FeedState,
    adapt_pace,
    decide,
    first_poll_offsets,
    next_interval,
)
from dohawatch.fetcher.parse import Entry, ParsedFeed, parse_feed, plain_text
from dohawatch.shared.events import SUMMARY_CHARS, TITLE_CHARS
from dohawatch.shared.settings import FeedConfig

NOW = datetime(2025, 7, 24, 18, tzinfo=UTC)
FEED = FeedConfig(url="https://a.example/feed.xml", name="A", tags=("wire",))


def parsed(*entries: Entry) -> ParsedFeed:
    return ParsedFeed(tuple(entries), malformed=False, ttl_seconds=None, language="en")


def entry(guid: str, title: str = "t", link: str = "https://a.example/1") -> Entry:
    return Entry(guid=guid, link=link, title=title, summary="s", published_at=NOW)


def poll(state: FeedState, feed: ParsedFeed):  # type: ignore[no-untyped-def]
    return decide(state, FEED, feed, body_hash="h", etag='"e"', last_modified=None, fetched_at=NOW)


def test_new_entries_publish_once_oldest_first() -> None:
    """A second poll of the same entries publishes nothing; order is oldest first."""
    state = FeedState(feed_key=FEED.url, url=FEED.url)
    first = poll(state, parsed(entry("2", "b", "https://a.example/2"), entry("1", "a")))
    assert [i.title for i in first.items] == ["a", "b"]
    assert first.items[0].feed_tags == ("wire",)
    assert poll(first.state, parsed(entry("1", "a"))).items == ()


def test_changed_guid_with_same_link_and_title_is_a_duplicate() -> None:
    """Republishing with a new GUID but the same link and title is caught."""
    first = poll(FeedState(feed_key=FEED.url, url=FEED.url), parsed(entry("old")))
    again = poll(first.state, parsed(entry("new")))
    assert again.items == ()
    assert again.duplicates == 1


def test_seen_ids_are_bounded() -> None:
    """State stays bounded however long the feed runs: two keys per entry, SEEN_ENTRIES entries."""
    state = FeedState(feed_key=FEED.url, url=FEED.url)
    for n in range(3):
        batch = [entry(f"{n}-{i}", f"t{n}-{i}", f"https://a.example/{n}/{i}") for i in range(800)]
        state = poll(state, parsed(*batch)).state
    assert len(state.seen) == 2 * SEEN_ENTRIES


def _big_feed(n: int, first: int = 0) -> list[Entry]:
    """``n`` entries, newest first, numbered from ``first``."""
    return [
        entry(f"g{i}", f"title {i}", f"https://a.example/{i}")
        for i in reversed(range(first, first + n))
    ]


def test_a_feed_of_five_thousand_entries_gaining_one_publishes_one() -> None:
    """Every entry a feed still lists is remembered, however many: one new entry, one item."""
    state = poll(FeedState(feed_key=FEED.url, url=FEED.url), parsed(*_big_feed(5000))).state
    grown = poll(state, parsed(*_big_feed(5001)))
    assert [i.title for i in grown.items] == ["title 5000"]
    # A feed that drops its oldest entry and gains a newer one: still one item.
    slid = poll(grown.state, parsed(*_big_feed(5001, first=1)))
    assert [i.title for i in slid.items] == ["title 5001"]


def test_an_entry_the_contract_refuses_is_left_out_alone() -> None:
    """A link whose port is no number or out of range drops that entry; the others publish."""
    bad = [
        entry("p1", "bad port", "http://a.example:99999/x"),
        entry("p2", "bad port text", "http://a.example:abc/x"),
    ]
    decision = poll(FeedState(feed_key=FEED.url, url=FEED.url), parsed(entry("ok", "fine"), *bad))
    assert [i.title for i in decision.items] == ["fine"]
    assert decision.rejected == 2


def test_an_entry_without_a_title_takes_one_from_its_summary() -> None:
    """RSS 2.0 items with only a description are published, titled by its first sentence."""
    untitled = Entry(
        guid="d1",
        link=None,
        title="",
        summary="Hamas delivered its reply to mediators. More follows.",
        published_at=NOW,
    )
    decision = poll(FeedState(feed_key=FEED.url, url=FEED.url), parsed(untitled))
    assert [i.title for i in decision.items] == ["Hamas delivered its reply to mediators"]


def test_oversized_text_is_capped_with_a_marker() -> None:
    """A 630 KB title and a 1.2 MB summary are cut to their stated lengths, ending in the marker."""
    huge = Entry(
        guid="h",
        link="https://a.example/h",
        title="T" * 630_000,
        summary="S" * 1_200_000,
        published_at=NOW,
    )
    (item,) = poll(FeedState(feed_key=FEED.url, url=FEED.url), parsed(huge)).items
    assert len(item.title) == TITLE_CHARS
    assert item.title.endswith(TRUNCATED)
    assert len(item.summary) == SUMMARY_CHARS
    assert item.summary.endswith(TRUNCATED)


@given(st.integers(min_value=0, max_value=50))
def test_backoff_doubles_and_stays_within_bounds(failures: int) -> None:
    """Failures double the interval, never past the maximum nor below the minimum."""
    interval = next_interval(FEED, 60, 30, 3600, failures)
    assert 30 <= interval <= 3600
    if failures < 5:
        assert interval == 60 * 2**failures


def test_plain_text_strips_markup_and_decodes_entities() -> None:
    """Markup and entities become plain text."""
    assert plain_text("<p>Talks &amp; <b>truce</b></p><script>x()</script>") == "Talks & truce"


def test_rss_and_atom_parse_to_the_same_entries() -> None:
    """The same items rendered as RSS and Atom parse to the same plain entries."""
    _outlets, items = load_replay()
    chosen = items[:3]
    outlet = {"name": "X", "site": "https://x.example", "format": "rss"}
    rss = parse_feed(
        _rss(outlet, chosen), base_url="https://x.example/f", content_type=None, fetched_at=NOW
    )
    atom = parse_feed(
        _atom(outlet, chosen), base_url="https://x.example/f", content_type=None, fetched_at=NOW
    )
    assert rss.entries == atom.entries
    assert rss.entries[-1].title == chosen[0].title
    assert rss.entries[-1].published_at == chosen[0].published


def test_future_dates_are_clamped_to_the_fetch_time() -> None:
    """A date after the fetch is a publisher's mistake and becomes the fetch time."""
    body = (
        b"<rss version='2.0'><channel><title>x</title><item><title>t</title>"
        b"<link>https://x.example/1</link><pubDate>Mon, 01 Jan 2035 00:00:00 GMT</pubDate>"
        b"</item></channel></rss>"
    )
    feed = parse_feed(body, base_url="https://x.example/f", content_type=None, fetched_at=NOW)
    assert feed.entries[0].published_at == NOW


@given(st.lists(st.booleans(), max_size=60))
def test_pace_follows_how_often_a_feed_posts_within_bounds(polls: list[bool]) -> None:
    """Busy feeds speed up, quiet ones slow down, never past the pace bounds or the min."""
    pace = 1.0
    for found_new in polls:
        before = pace
        pace = adapt_pace(pace, found_new)
        assert PACE_RANGE[0] <= pace <= PACE_RANGE[1]
        assert (pace <= before) if found_new else (pace >= before)
        assert 30 <= next_interval(FEED, 60, 30, 3600, 0, None, pace) <= 3600


def test_a_busy_feed_is_polled_sooner_than_a_quiet_one() -> None:
    """After three polls with news the interval is an eighth of the quiet feed's four times."""
    busy = quiet = 1.0
    for _ in range(3):
        busy, quiet = adapt_pace(busy, True), adapt_pace(quiet, False)
    assert next_interval(FEED, 600, 10, 3600, 0, None, busy) == 150  # floor of the pace
    assert next_interval(FEED, 600, 10, 3600, 0, None, quiet) == 600 * 1.25**3


def test_a_hosts_feeds_start_spread_over_their_interval() -> None:
    """Seventy feeds on one host start evenly over the 300 s interval, a feed alone on
    its host at once, and a feed with its own interval over that one."""
    busy = [FeedConfig(url=f"https://busy.example/{i}.xml", name=f"b{i}") for i in range(70)]
    alone = FeedConfig(url="https://alone.example/feed.xml", name="alone")
    slow = FeedConfig(url="https://slow.example/a.xml", name="s", interval_seconds=600)
    slow2 = FeedConfig(url="https://slow.example/b.xml", name="s2", interval_seconds=600)
    offsets = first_poll_offsets([*busy, alone, slow, slow2], 300.0)
    spread = sorted(offsets[f.url] for f in busy)
    assert spread[0] == 0
    gaps = [b - a for a, b in itertools.pairwise(spread)]
    assert max(gaps) - min(gaps) < 1e-9
    assert min(gaps) == pytest.approx(300 / 70)
    assert spread[-1] < 300
    assert offsets[alone.url] == 0
    assert sorted([offsets[slow.url], offsets[slow2.url]]) == [0, 300]
