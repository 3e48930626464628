"""The fetcher's pure core: parsing, identity, state and scheduling."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dohawatch.demo.feeds import _atom, _rss, load_replay
from dohawatch.fetcher.core import (
    PACE_RANGE,
    SEEN_ENTRIES,
    TRUNCATED,
    Entry,
    FeedState,
    ParsedFeed,
    PollDecision,
    Reply,
    Schedule,
    adapt_pace,
    after_failure,
    after_response,
    decide,
    first_poll_offsets,
    moved,
    needs_body,
    next_interval,
)
from dohawatch.fetcher.parse import parse_feed, plain_text
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.errors import FeedError
from dohawatch.shared.events import SUMMARY_CHARS, TITLE_CHARS
from dohawatch.shared.settings import load_settings

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


# --- every poll outcome: after_response and after_failure, no server ------------------

SCHEDULE = Schedule(interval=300, minimum=60, maximum=3600, failing_after=3)
KNOWN = FeedState(
    feed_key=FEED.url, url=FEED.url, etag='"v1"', body_hash="h1", failures=2, pace=1.0
)


def answer(status: int, **fields: str | None) -> Reply:
    return Reply(status, FEED.url, **fields)  # type: ignore[arg-type]


def wait(decision: PollDecision) -> float:
    assert decision.state.next_poll is not None
    return (decision.state.next_poll - NOW).total_seconds()


def test_not_modified_is_a_success_that_slows_the_feed() -> None:
    """304: failures reset, last success now, pace a quarter slower, nothing published."""
    decision = after_response(KNOWN, FEED, answer(304), now=NOW, schedule=SCHEDULE)
    assert (decision.outcome, decision.error, decision.items) == ("304", None, ())
    assert decision.state.failures == 0
    assert decision.state.last_success == NOW
    assert decision.state.etag == '"v1"'  # validators kept for the next request
    assert wait(decision) == 300 * 1.25


def test_an_unchanged_body_is_not_parsed_and_counts_as_unchanged() -> None:
    """A 200 whose body hashes as the last one needs no parse and publishes nothing."""
    same = answer(200, body_hash="h1")
    assert not needs_body(KNOWN, same)
    decision = after_response(KNOWN, FEED, same, now=NOW, schedule=SCHEDULE)
    assert (decision.outcome, decision.state.failures, decision.items) == ("unchanged", 0, ())


def test_a_changed_body_publishes_its_new_entries_and_keeps_its_validators() -> None:
    """A 200 with a new body: parsed entries published, validators and hash stored,
    and the pace doubles because the feed had news."""
    reply = answer(200, body_hash="h2", etag='"v2"', last_modified="Tue, 01 Jul 2025 00:00:00 GMT")
    assert needs_body(KNOWN, reply)
    with pytest.raises(ValueError, match="parsed body"):
        after_response(KNOWN, FEED, reply, now=NOW, schedule=SCHEDULE)
    decision = after_response(
        KNOWN, FEED, reply, now=NOW, schedule=SCHEDULE, parsed=parsed(entry("1"))
    )
    assert (decision.outcome, len(decision.items)) == ("200", 1)
    assert (decision.state.etag, decision.state.body_hash) == ('"v2"', "h2")
    assert decision.state.last_modified == "Tue, 01 Jul 2025 00:00:00 GMT"
    assert decision.state.pace == 0.5
    assert wait(decision) == 150


def test_gone_disables_the_feed_for_good() -> None:
    """410: the feed is disabled, an alarm is raised, and the state says so."""
    decision = after_response(KNOWN, FEED, answer(410), now=NOW, schedule=SCHEDULE)
    assert decision.outcome == "gone"
    assert decision.state.disabled
    assert decision.alarm == "feed_disabled"
    assert decision.error is not None
    assert "410" in decision.error


@pytest.mark.parametrize(("status", "label"), [(429, "4xx"), (503, "5xx")])
def test_too_many_requests_and_unavailable_wait_for_retry_after(status: int, label: str) -> None:
    """429 and 503 are failures whose next poll is no sooner than Retry-After, in
    seconds or as an HTTP date; the server's wait is a floor, not doubled."""
    patient = replace(SCHEDULE, maximum=86400)
    fresh = FeedState(feed_key=FEED.url, url=FEED.url)
    seconds = after_response(
        fresh, FEED, answer(status, retry_after="7200"), now=NOW, schedule=patient
    )
    assert (seconds.outcome, seconds.state.failures) == (label, 1)
    assert wait(seconds) == 7200
    date = "Thu, 24 Jul 2025 19:00:00 GMT"  # an hour after NOW
    dated = after_response(fresh, FEED, answer(status, retry_after=date), now=NOW, schedule=patient)
    assert wait(dated) == 3600
    plain = after_response(fresh, FEED, answer(status), now=NOW, schedule=patient)
    assert wait(plain) == 600  # no hint: the interval doubled once
    late = after_response(KNOWN, FEED, answer(status, retry_after="60"), now=NOW, schedule=patient)
    assert wait(late) == 300 * 2**3  # a short hint does not cut the backoff of three failures


def test_other_statuses_are_failures_labelled_by_class() -> None:
    """Any other status fails the poll, labelled by its class."""
    for status, label in ((404, "4xx"), (500, "5xx"), (302, "3xx")):
        decision = after_response(KNOWN, FEED, answer(status), now=NOW, schedule=SCHEDULE)
        assert (decision.outcome, decision.state.failures) == (label, 3)


def test_a_permanent_redirect_moves_the_feed_whatever_the_answer() -> None:
    """A moved URL is kept on success and on failure; the feed's key never changes."""
    new = "https://b.example/feed.xml"
    for status in (304, 500):
        decision = after_response(
            KNOWN, FEED, answer(status, moved_to=new), now=NOW, schedule=SCHEDULE
        )
        assert (decision.state.url, decision.state.feed_key) == (new, FEED.url)
    assert moved(KNOWN, answer(200)) is KNOWN


def test_failures_in_a_row_back_off_and_raise_one_alarm_when_the_line_is_crossed() -> None:
    """Each failure doubles the wait; the alarm fires on the failing_after-th failure
    only; a success resets the count."""
    state, waits, alarms = FeedState(feed_key=FEED.url, url=FEED.url), [], []
    timeout = FeedError("timeout", "no answer")
    for _ in range(5):
        decision = after_failure(state, FEED, timeout, now=NOW, schedule=SCHEDULE)
        state = decision.state
        waits.append(wait(decision))
        alarms.append(decision.alarm)
    assert waits == [600, 1200, 2400, 3600, 3600]
    assert alarms == [None, None, "feed_failing", None, None]
    assert state.failures == 5
    recovered = after_response(state, FEED, answer(304), now=NOW, schedule=SCHEDULE)
    assert recovered.state.failures == 0


def test_a_permanent_failure_waits_the_longest_interval() -> None:
    """A refused address or an oversized body will not fix itself in a minute: the
    next poll is the schedule's maximum, not a doubled interval."""
    for outcome in ("refused", "too-large"):
        error = FeedError(outcome, "no", retriable=False)
        first = after_failure(
            FeedState(feed_key=FEED.url, url=FEED.url), FEED, error, now=NOW, schedule=SCHEDULE
        )
        assert (first.outcome, wait(first)) == (outcome, 3600)


def test_ttl_and_max_age_hold_the_next_poll_back() -> None:
    """An RSS <ttl> and Cache-Control max-age set a floor under the next poll; the
    larger wins; neither goes past the maximum."""
    reply = answer(200, body_hash="h2", cache_control="public, max-age=900")
    ttl = ParsedFeed((entry("1"),), malformed=False, ttl_seconds=1800, language=None)
    both = after_response(KNOWN, FEED, reply, now=NOW, schedule=SCHEDULE, parsed=ttl)
    assert wait(both) == 1800
    only_age = after_response(
        KNOWN, FEED, answer(304, cache_control="max-age=900"), now=NOW, schedule=SCHEDULE
    )
    assert wait(only_age) == 900
    huge = after_response(
        KNOWN, FEED, answer(304, cache_control="max-age=86400"), now=NOW, schedule=SCHEDULE
    )
    assert wait(huge) == 3600


def test_the_schedule_comes_from_the_settings() -> None:
    """Schedule.of reads the four fetch settings."""
    settings = load_settings(
        fetch_interval_seconds=120,
        fetch_min_interval_seconds=30,
        fetch_max_interval_seconds=900,
        fetch_failing_after=7,
    )
    assert Schedule.of(settings) == Schedule(120, 30, 900, 7)
