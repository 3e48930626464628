"""Ids, CloudEvents encoding and the committed schemas."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dohawatch.schemas import render_schemas
from dohawatch.shared import ids
from dohawatch.shared.codec import decode, encode, header
from dohawatch.shared.errors import DecodeError
from dohawatch.shared.events import NewsItem, Severity
from tests.factories import alert

NOW = datetime(2025, 7, 24, 13, 5, tzinfo=UTC)
ITEM = NewsItem(
    item_id="it1-x",
    feed_url="https://a.example/feed",
    source="A",
    url="https://a.example/1",
    title="T",
    summary="S",
    published_at=NOW,
    fetched_at=NOW,
)

urls = st.builds(
    lambda host, path, q: f"https://{host}.example/{path}?{q}",
    st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    st.from_regex(r"[a-z0-9/]{0,12}", fullmatch=True),
    st.from_regex(r"(utm_source=x&)?id=[0-9]{1,3}", fullmatch=True),
)


@given(urls)
@example("https://a.example//?id=0")  # a path of slashes alone is the root
def test_normalize_link_is_idempotent(url: str) -> None:
    """Normalising a normalised link changes nothing."""
    once = ids.normalize_link(url)
    assert ids.normalize_link(once) == once


def test_normalize_link_drops_tracking_case_port_and_fragment() -> None:
    """Links that differ only by tracking, case, default port or fragment are one link."""
    a = ids.normalize_link("HTTPS://News.Example:443/a/b/?utm_source=x&id=2&fbclid=z#top")
    assert a == ids.normalize_link("https://news.example/a/b?id=2")
    assert a != ids.normalize_link("https://news.example/a/b?id=3")


def test_item_id_scopes_bare_guids_by_feed_but_not_uri_guids() -> None:
    """A GUID like '123' is only unique in its feed; a URI GUID is global."""
    bare = [ids.item_id(f, guid="123", link=None) for f in ("https://a/f", "https://b/f")]
    uri = [
        ids.item_id(f, guid="tag:x.example,2025:1", link=None)
        for f in ("https://a/f", "https://b/f")
    ]
    assert bare[0] != bare[1]
    assert uri[0] == uri[1]


@given(st.text(min_size=1, max_size=40).filter(str.strip))
def test_item_id_is_stable_and_versioned(guid: str) -> None:
    """The same entry always gets the same id, tagged with its scheme version."""
    first = ids.item_id("https://a.example/f", guid=guid, link=None)
    assert first == ids.item_id("https://a.example/f", guid=guid, link="https://other")
    assert first.startswith("it1-")


def test_story_keys_differ_by_type_and_day() -> None:
    """Story keys separate event types and days, and agree otherwise."""
    day = date(2025, 7, 24)
    key = ids.story_key("doha-talks", "delegation_withdrawn", day)
    assert key == ids.story_key("doha-talks", "delegation_withdrawn", day)
    assert key != ids.story_key("doha-talks", "talks_stalled", day)
    assert key != ids.story_key("doha-talks", "delegation_withdrawn", date(2025, 7, 25))


def test_encode_sets_cloudevents_headers_and_round_trips() -> None:
    """A contract event travels as JSON with ce_* headers and decodes to itself."""
    message = encode(ITEM, "dohawatch.news.raw")
    assert message.key == b"it1-x"
    assert header(message.headers, "ce_type") == "dohawatch.news.item"
    assert header(message.headers, "ce_id") == "it1-x"
    assert header(message.headers, "ce_specversion") == "1.0"
    assert decode(message.value, message.headers, NewsItem) == ITEM


def test_alert_ce_id_carries_the_revision() -> None:
    """Each alert revision is its own CloudEvent; a replay of one keeps its id."""
    revision = alert(alert_id="al1-a", severity=Severity.HIGH, headline="h", revision=3)
    assert header(encode(revision, "t").headers, "ce_id") == "al1-a.r3"


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{}", [("ce_type", b"dohawatch.alert")], "wrong-type"),
        (b"{}", [], "wrong-type"),
        (b"not json", [("ce_type", b"dohawatch.news.item")], "invalid-body"),
        (b'{"item_id": 1}', [("ce_type", b"dohawatch.news.item")], "invalid-body"),
        (None, [("ce_type", b"dohawatch.news.item")], "empty-body"),
    ],
)
def test_decode_rejects_bad_messages_with_a_reason(
    value: bytes | None, headers: list[tuple[str, bytes]], reason: str
) -> None:
    """Undecodable input raises DecodeError with a reason for the dead-letter headers."""
    with pytest.raises(DecodeError) as caught:
        decode(value, headers, NewsItem)
    assert caught.value.reason == reason


def test_committed_schemas_match_the_models() -> None:
    """schemas/ is what `make schemas` generates from shared/events.py (no drift)."""
    root = Path(__file__).parents[2] / "schemas"
    for name, text in render_schemas().items():
        assert (root / name).read_text(encoding="utf-8") == text, f"{name} drifted: make schemas"
