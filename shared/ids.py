"""Deterministic ids, all computed here.

Each id is a SHA-256 over canonical JSON of ``[kind, scheme version, parts]``, so
changing the scheme for one kind (bump its version) can never collide silently
with ids made under the old one. Ids are hex, prefixed by kind and version so a
reader can tell them apart in logs: ``it1-…``, ``st1-…``, ``al1-…``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import date
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["alert_id", "content_hash", "item_id", "normalize_link", "revision_id", "story_key"]

_ITEM_SCHEME = 1
_STORY_SCHEME = 1
_ALERT_SCHEME = 1

# Query parameters that only track a click; dropping them makes the same article
# reached through different campaigns one link.
_TRACKING_PARAMS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid", "ref"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# GUIDs in these schemes are globally unique by definition (RFC 4287 §4.2.6,
# RFC 4151, RFC 8141); others ("12345") are only unique within their feed.
_GLOBAL_GUID_PREFIXES = ("http://", "https://", "tag:", "urn:")


def _digest(kind: str, version: int, parts: object) -> str:
    canonical = json.dumps([kind, version, parts], ensure_ascii=False, separators=(",", ":"))
    return f"{kind}{version}-{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


@functools.lru_cache(maxsize=65536)  # a feed's entries come back poll after poll
def normalize_link(url: str) -> str:
    """Return ``url`` in a canonical form for identity comparisons.

    Lower-cases scheme and host, drops default ports, fragments, ``utm_*`` and
    other click-tracking parameters, sorts the remaining query, and removes a
    trailing slash from non-root paths. The result is for comparison, not display.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port and parts.port != _DEFAULT_PORTS.get(scheme) else None
    netloc = f"{host}:{port}" if port else host
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in _TRACKING_PARAMS
    )
    path = parts.path.rstrip("/") or "/"  # "//" too is the root
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def item_id(
    feed_key: str,
    *,
    guid: str | None,
    link: str | None,
    title: str = "",
    published: str | None = None,
) -> str:
    """Return the stable id of a feed entry.

    Args:
        feed_key: the feed's configured URL; scopes GUIDs that are only unique
            within their feed. It must not change when the feed redirects.
        guid: the entry's id/guid, if any.
        link: the entry's link, if any.
        title: the entry's title, used only when it has neither guid nor link.
        published: the entry's date as given, with ``title`` the last resort.

    Returns:
        An id such as ``it1-3f…``.
    """
    guid = (guid or "").strip()
    if guid:
        if guid.lower().startswith(_GLOBAL_GUID_PREFIXES):
            return _digest("it", _ITEM_SCHEME, ["guid", guid])
        return _digest("it", _ITEM_SCHEME, ["feed-guid", feed_key, guid])
    if link and link.strip():
        return _digest("it", _ITEM_SCHEME, ["link", normalize_link(link)])
    return _digest("it", _ITEM_SCHEME, ["title", feed_key, title.strip(), published or ""])


def story_key(scope: str, kind: str, day: date) -> str:
    """Return the key shared by items about one development.

    Args:
        scope: the topic pack's name, so two packs never share a story.
        kind: what happened (the primary event type), or ``item:<id>`` for an
            item that is a story of its own.
        day: the UTC day it was reported.
    """
    return _digest("st", _STORY_SCHEME, [scope, kind, day.isoformat()])


def alert_id(story: str, generation: int = 1) -> str:
    """Return the id of the alert raised for story ``story`` (shared by its revisions).

    ``generation`` counts the times the story restarted after its window closed
    (a quiet gap); the first keeps the plain id.
    """
    return _digest("al", _ALERT_SCHEME, [story] if generation == 1 else [story, generation])


def content_hash(data: bytes) -> str:
    """Return a hex digest of ``data``, used to skip re-parsing an unchanged body."""
    return hashlib.sha256(data).hexdigest()


def revision_id(alert_id: str, revision: int) -> str:
    """The id of one revision of an alert, ``al1-….r3``: its CloudEvents id on the
    alerts topic, the key webhook receivers deduplicate by, and the stem of its
    mail's ``Message-ID``."""
    return f"{alert_id}.r{revision}"
