"""``dohawatch feeds``: OPML import and the feed list with its state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from dohawatch.cli import main
from dohawatch.fetcher.core import FeedState
from dohawatch.fetcher.feed_list import feeds_table, import_opml
from dohawatch.fetcher.state import FeedStateStore
from dohawatch.shared.config_file import FeedConfig, FileConfig
from dohawatch.shared.errors import ConfigError

OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>desk</title></head><body>
  <outline text="Middle East">
    <outline type="rss" text="Al Jazeera: all" xmlUrl="https://www.aljazeera.com/xml/rss/all.xml"
             category="arab,wire"/>
    <outline type="rss" title="Times of Israel" text="ToI" xmlUrl="https://www.timesofisrael.com/feed/"/>
    <outline type="rss" text="duplicate" xmlUrl="https://www.timesofisrael.com/feed/"/>
    <outline type="link" text="not a feed" url="https://example.org/"/>
  </outline>
</body></opml>"""


def test_opml_import_yields_valid_configuration(tmp_path: Path) -> None:
    """Feeds with an http(s) xmlUrl become entries, once each, with safe names and tags."""
    path = tmp_path / "subs.opml"
    path.write_text(OPML)
    text = import_opml(path, tags=["imported"])
    config = FileConfig.model_validate(yaml.safe_load(text))
    assert [(f.name, f.tags) for f in config.feeds] == [
        ("Al Jazeera all", ("imported", "arab", "wire")),
        ("Times of Israel", ("imported",)),
    ]


def test_an_opml_without_feeds_or_not_xml_is_a_config_error(tmp_path: Path) -> None:
    """Bad input says which file and why."""
    path = tmp_path / "x.opml"
    path.write_text("<opml><body/></opml>")
    with pytest.raises(ConfigError, match="no outline"):
        import_opml(path)
    path.write_text("not xml")
    with pytest.raises(ConfigError, match="not a readable OPML"):
        import_opml(path)


def test_feeds_list_shows_state_failures_and_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dohawatch feeds list` reads the file and the stored state: failing, gone, moved, new."""
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "feeds:\n"
        "  - {url: 'https://a.example/rss', name: A}\n"
        "  - {url: 'https://b.example/rss', name: B}\n"
        "  - {url: 'https://c.example/rss', name: C}\n"
        "  - {url: 'https://d.example/rss', name: D}\n"
    )
    when = datetime(2025, 7, 24, 18, tzinfo=UTC)
    store = FeedStateStore(tmp_path / "state" / "fetcher.sqlite3")
    store.put(FeedState("https://a.example/rss", "https://a.example/new", last_success=when))
    store.put(FeedState("https://b.example/rss", "https://b.example/rss", failures=7))
    store.put(FeedState("https://c.example/rss", "https://c.example/rss", disabled=True))
    store.close()
    monkeypatch.setenv("DOHAWATCH_CONFIG_FILE", str(config))
    monkeypatch.setenv("DOHAWATCH_STATE_DIR", str(tmp_path / "state"))
    assert main(["feeds", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["feed", "status"]
    a, b, c, d = lines[1:]
    assert "ok" in a
    assert "2025-07-24 18:00:00Z" in a
    assert a.endswith("https://a.example/new")
    assert "failing (7)" in b
    assert "disabled (410)" in c
    assert " new " in d


def test_feeds_table_aligns_columns() -> None:
    """Columns line up whatever the name lengths."""
    feeds = [
        FeedConfig(url="https://a.example/x", name="A very long feed name"),
        FeedConfig(url="https://b.example/x", name="B"),
    ]
    lines = feeds_table(feeds, {}, 5)
    assert len({line.index("new") for line in lines[1:]}) == 1


def test_feeds_table_names_each_feeds_owner_when_known() -> None:
    """On a cluster the table gains an owner column; a feed nobody polled yet shows '-'."""
    feeds = [
        FeedConfig(url="https://a.example/x", name="A"),
        FeedConfig(url="https://b.example/x", name="B"),
    ]
    header, a, b = feeds_table(feeds, {}, 5, {"https://a.example/x": "fetcher@pod-1:7"})
    assert header.split()[-2:] == ["owner", "url"]
    assert a.split()[-2:] == ["fetcher@pod-1:7", "https://a.example/x"]
    assert b.split()[-2:] == ["-", "https://b.example/x"]
    assert "owner" not in feeds_table(feeds, {}, 5)[0]
