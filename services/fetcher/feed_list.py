"""``dohawatch feeds``: what operators ask of their feed list.

``list`` joins the feed list with each feed's state and, on a Kafka cluster, the
replica that polls it; ``sync`` writes the configuration file's feeds to the
feeds topic (:mod:`.feed_table`); ``import`` turns an OPML subscription list
into entries for the configuration file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import yaml
from lxml import etree

from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.errors import ConfigError

from .core import FeedState

__all__ = ["feeds_table", "import_opml"]

_UNSAFE_NAME = re.compile(r"[^\w .&'()-]+")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "never"


def _status(state: FeedState | None, failing_after: int) -> str:
    if state is not None and state.disabled:
        return "disabled (410)"
    if state is None or (state.last_success is None and not state.failures):
        return "new"
    if state.failures >= failing_after:
        return f"failing ({state.failures})"
    return "ok" if not state.failures else f"retrying ({state.failures})"


def feeds_table(
    feeds: Sequence[FeedConfig],
    states: Mapping[str, FeedState],
    failing_after: int,
    owners: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per feed: name, status, last success, next poll, the replica that
    polls it (when ``owners`` is given: feed URL -> replica), and the URL polled."""
    header = ("feed", "status", "last success", "next poll")
    rows = [(*header, *(("owner",) if owners is not None else ()), "url")]
    for feed in feeds:
        state = states.get(feed.url)
        owner = () if owners is None else (owners.get(feed.url, "-"),)
        rows.append(
            (
                feed.name,
                _status(state, failing_after),
                _when(state.last_success if state else None),
                _when(state.next_poll if state else None),
                *owner,
                state.url if state else feed.url,
            )
        )
    aligned = len(rows[0]) - 1  # every column but the URL
    widths = [max(len(r[i]) for r in rows) for i in range(aligned)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r[:aligned], widths, strict=True)) + "  " + r[-1]
        for r in rows
    ]


# No entity expansion, no network: an OPML file can come from anywhere.
_OPML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def import_opml(path: Path, tags: Sequence[str] = ()) -> str:
    """The feeds of an OPML file as a YAML ``feeds:`` list for the configuration file.

    Raises:
        ConfigError: the file is unreadable, not OPML, or lists no feed.
    """
    try:
        root = etree.parse(str(path), _OPML_PARSER).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise ConfigError(f"{path}: not a readable OPML file: {exc}") from exc
    feeds: list[dict[str, object]] = []
    seen: set[str] = set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not url.startswith(("http://", "https://")) or url in seen:
            continue
        seen.add(url)
        name = _UNSAFE_NAME.sub(" ", outline.get("title") or outline.get("text") or url)
        name = " ".join(name.split())[:80] or url
        categories = [c.strip() for c in (outline.get("category") or "").split(",") if c.strip()]
        FeedConfig(url=url, name=name)  # refuse here what the fetcher would refuse later
        feeds.append({"url": url, "name": name, "tags": [*tags, *categories]})
    if not feeds:
        raise ConfigError(f"{path}: no outline with an http(s) xmlUrl")
    return yaml.safe_dump({"feeds": feeds}, sort_keys=False, allow_unicode=True, width=120)
