"""The fetcher's pure core: parsing, identity, state and scheduling."""

from __future__ import annotations

from datetime import UTC, datetime

from dohawatch.demo.feeds import _atom, _rss, load_replay
from dohawatch.fetcher.core import (
    PACE_RANGE,
    SEEN_LIMIT,
    FeedState,
    adapt_pace,
    decide,
    next_interval,
)
from dohawatch.fetcher.parse import Entry, ParsedFeed, parse_feed, plain_text
from dohawatch.shared.settings import FeedConfig
from hypothesis import given
from hypothesis import strategies as st

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
    """State stays bounded however long the feed runs."""
    state = FeedState(feed_key=FEED.url, url=FEED.url)
    for n in range(3):
        batch = [entry(f"{n}-{i}", f"t{n}-{i}", f"https://a.example/{n}/{i}") for i in range(800)]
        state = poll(state, parsed(*batch)).state
    assert len(state.seen) == SEEN_LIMIT


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
