"""The fetcher's state changelog: a record restores the state that wrote it."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from dohawatch.fetcher.core import FeedState
from dohawatch.fetcher.feed_table import decode_feed, decode_state, encode_feed, encode_state
from dohawatch.shared.config_file import FeedConfig

_text = st.text(max_size=40)
_when = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
states = st.builds(
    FeedState,
    feed_key=_text,
    url=_text,
    etag=st.none() | _text,
    last_modified=st.none() | _text,
    body_hash=st.none() | _text,
    seen=st.tuples(_text, _text) | st.just(()),
    failures=st.integers(0, 1000),
    last_success=_when,
    next_poll=_when,
    disabled=st.booleans(),
    pace=st.floats(0.01, 100, allow_nan=False),
)


@given(states)
def test_a_changelog_record_restores_the_state_that_wrote_it(state: FeedState) -> None:
    assert decode_state(encode_state(state)) == state


def test_a_record_that_is_no_state_or_feed_is_refused_not_raised() -> None:
    for value in (b"", b"{", b"[]", b"null", b'{"url": "x"}', b'{"feed_key": 1, "url": []}'):
        assert decode_state(value) is None
    assert decode_feed(b'{"url": "ftp://x", "name": "x"}') is None
    feed = FeedConfig(url="https://example.org/feed", name="Example", tags=("a",))
    assert decode_feed(encode_feed(feed)) == feed
