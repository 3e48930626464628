"""A loopback HTTP server that replays the bundled feeds, revealing items over time.

Each outlet's feed is rendered as RSS 2.0 or Atom 1.0 from the replay file and
shows only the items whose turn has come, as a live feed would. It answers
conditional GETs (ETag / If-None-Match → 304) like a well-behaved server.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

__all__ = ["ReplayItem", "ReplayServer", "load_replay"]

ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One item of the replay set."""

    outlet: str
    guid: str
    link: str
    title: str
    summary: str
    published: datetime


def load_replay(name: str = "july-2025") -> tuple[dict[str, dict[str, str]], list[ReplayItem]]:
    """The bundled replay set: outlets by slug, and items oldest first."""
    raw = json.loads((resources.files("dohawatch.demo") / "replay" / f"{name}.json").read_text())
    items = [
        ReplayItem(
            i["outlet"],
            i["guid"],
            i["link"],
            i["title"],
            i["summary"],
            datetime.fromisoformat(i["published"]),
        )
        for i in raw["items"]
    ]
    return raw["outlets"], sorted(items, key=lambda i: i.published)


def _rss(outlet: dict[str, str], items: Sequence[ReplayItem]) -> bytes:
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = outlet["name"]
    ET.SubElement(channel, "link").text = outlet["site"]
    ET.SubElement(channel, "description").text = f"{outlet['name']} world news"
    ET.SubElement(channel, "language").text = "en"
    for item in reversed(items):
        node = ET.SubElement(channel, "item")
        ET.SubElement(node, "title").text = item.title
        ET.SubElement(node, "link").text = item.link
        ET.SubElement(node, "guid", isPermaLink="false").text = item.guid
        ET.SubElement(node, "pubDate").text = format_datetime(item.published)
        ET.SubElement(node, "description").text = f"<p>{item.summary}</p>"
    xml: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return xml


def _atom(outlet: dict[str, str], items: Sequence[ReplayItem]) -> bytes:
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}title").text = outlet["name"]
    ET.SubElement(feed, f"{{{ATOM}}}id").text = outlet["site"] + "/"
    updated = items[-1].published.isoformat() if items else "2025-01-01T00:00:00+00:00"
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = updated
    for item in reversed(items):
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}title").text = item.title
        ET.SubElement(entry, f"{{{ATOM}}}id").text = item.guid
        ET.SubElement(entry, f"{{{ATOM}}}link", href=item.link)
        ET.SubElement(entry, f"{{{ATOM}}}published").text = item.published.isoformat()
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = item.published.isoformat()
        ET.SubElement(entry, f"{{{ATOM}}}summary", type="html").text = f"<p>{item.summary}</p>"
    xml: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return xml


class ReplayServer:
    """Serves ``/<outlet>.xml`` (127.0.0.1 by default), revealing one item every ``step`` seconds.

    ``step=0`` reveals everything at once.
    """

    def __init__(
        self,
        outlets: dict[str, dict[str, str]],
        items: Sequence[ReplayItem],
        step: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.outlets = outlets
        self.items = list(items)
        self.step = step
        self.started = time.monotonic()
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the fetcher logs each poll itself."""

        self._http = ThreadingHTTPServer((host, port), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def url(self, outlet: str) -> str:
        """The feed URL of ``outlet``."""
        return f"http://127.0.0.1:{self.port}/{outlet}.xml"

    def revealed(self) -> int:
        """How many items are visible now."""
        if self.step <= 0:
            return len(self.items)
        return min(len(self.items), 1 + int((time.monotonic() - self.started) / self.step))

    def all_revealed(self) -> bool:
        """True once every item is visible."""
        return self.revealed() == len(self.items)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        self.requests += 1
        slug = handler.path.strip("/").removesuffix(".xml")
        outlet = self.outlets.get(slug)
        if outlet is None:
            handler.send_error(404)
            return
        visible = [i for i in self.items[: self.revealed()] if i.outlet == slug]
        render = _atom if outlet["format"] == "atom" else _rss
        body = render(outlet, visible)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if handler.headers.get("If-None-Match") == etag:
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.end_headers()
            return
        handler.send_response(200)
        kind = "application/atom+xml" if outlet["format"] == "atom" else "application/rss+xml"
        handler.send_header("Content-Type", f"{kind}; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("ETag", etag)
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> None:
        """Start serving in a daemon thread; the replay clock starts now."""
        self.started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._http.shutdown()
        self._http.server_close()
