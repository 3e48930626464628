"""The fetcher's HTTP edge: one conditional GET with the guards a poller needs.

    http(s) only → per-host gate (requests in flight, minimum gap) → GET, whose
    client refuses private, loopback, link-local or multicast addresses unless
    allowed (:mod:`.transport`) → redirect? the next hop the same way, at most
    ``MAX_REDIRECTS`` → stream the body up to the cap (counted after
    decompression, so a gzip bomb stops there too)

Every failure leaves as a ``FeedError`` whose ``outcome`` is the metrics label.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from dohawatch.shared.errors import FeedError
from dohawatch.shared.ids import content_hash

from .core import FeedState, Reply

__all__ = ["FetchResult", "HostGate", "ends_a_document", "fetch", "parsed_url"]

MAX_REDIRECTS = 5
_PERMANENT = {301, 308}  # RFC 9110 §15.4: the resource has moved for good
_REDIRECT = {301, 302, 303, 307, 308}


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one poll's GET returned, after redirects."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str  # where the body came from
    moved_to: str | None  # the new feed URL when every hop was a permanent redirect

    def reply(self) -> Reply:
        """The answer as the core reads it."""
        headers = dict(self.headers.items())  # one pass: each lookup in httpx's costs one
        return Reply(
            self.status_code,
            self.url,
            self.moved_to,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            cache_control=headers.get("cache-control"),
            retry_after=headers.get("retry-after"),
            content_type=headers.get("content-type"),
            body_hash=content_hash(self.content) if self.status_code == 200 else None,
        )


@functools.lru_cache(maxsize=65536)
def parsed_url(url: str) -> httpx.URL:
    """``url`` parsed once: httpx parses a URL in pure Python, which costs a tenth
    of a 304 poll each time it is given a string."""
    return httpx.URL(url)


@dataclass
class _Host:
    slots: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_start: float = float("-inf")


class HostGate:
    """At most ``per_host`` requests in flight to one host, started ``min_gap`` apart,
    and at most ``total`` in flight at all: httpx's pool costs more per request the
    more connections it holds (docs/performance.md), so a bounded pool is faster."""

    def __init__(self, per_host: int, min_gap: float, total: int = 16) -> None:
        self.per_host = per_host
        self.min_gap = min_gap
        self._hosts: dict[str, _Host] = {}
        self._total = asyncio.Semaphore(total)
        self.in_flight = 0

    @asynccontextmanager
    async def enter(self, url: str) -> AsyncIterator[None]:
        name = parsed_url(url).host  # lower case
        if (host := self._hosts.get(name)) is None:
            host = self._hosts[name] = _Host(asyncio.Semaphore(self.per_host))
        async with host.slots:
            async with host.lock:  # the gap is between starts, whoever holds a slot
                wait = host.last_start + self.min_gap - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                # Taken last, so a host waiting out its gap holds no global slot.
                await self._total.acquire()
                host.last_start = time.monotonic()
            self.in_flight += 1
            try:
                yield
            finally:
                self.in_flight -= 1
                self._total.release()


def _conditional_headers(state: FeedState) -> dict[str, str]:
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


async def _read(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded: gzip, deflate, brotli
        size += len(chunk)
        if size > limit:
            raise FeedError("too-large", f"body over {limit} bytes", retriable=False)
        chunks.append(chunk)
    return b"".join(chunks)


_DRAIN_LIMIT = 64 * 1024


async def _drain(response: httpx.Response) -> None:
    """Read a small body we do not need (a 304's, a redirect's), so the connection
    goes back to the pool: httpx closes one whose response was left unread."""
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > _DRAIN_LIMIT:
            break  # not worth reading on: let this connection close


async def fetch(
    client: httpx.AsyncClient,
    state: FeedState,
    *,
    limit: int,
    gate: HostGate,
    total: float,
) -> FetchResult:
    """GET ``state.url`` conditionally, following up to ``MAX_REDIRECTS`` checked hops,
    all within ``total`` seconds of requesting (httpx's own timeouts bound each
    read, not a body that drips in a byte at a time). Waiting for the host's turn
    at the gate is not requesting: a busy host's feeds queue, they do not time out.

    Raises:
        FeedError: a scheme other than http(s), a refused address (from a
            :func:`~.transport.feed_client`), DNS failure, timeout, redirect loop
            or excess, oversized body, or a transport error.
    """
    try:
        return await _follow(client, state, limit, gate, total)
    except TimeoutError as exc:
        raise FeedError("timeout", f"no complete answer within {total} s") from exc
    except httpx.TimeoutException as exc:
        raise FeedError("timeout", str(exc) or "timed out") from exc
    except httpx.HTTPError as exc:
        raise FeedError("unreachable", str(exc) or type(exc).__name__) from exc
    except httpx.InvalidURL as exc:  # a Location no URL parser takes
        raise FeedError("redirects", f"not a URL: {exc}", retriable=False) from exc


async def _follow(
    client: httpx.AsyncClient,
    state: FeedState,
    limit: int,
    gate: HostGate,
    budget: float,
) -> FetchResult:
    url = state.url
    seen: list[str] = []
    permanent = True
    spent = 0.0  # seconds spent requesting; the gate's queue not counted
    while True:
        if parsed_url(url).scheme not in ("http", "https"):
            raise FeedError("refused", f"not an http(s) URL: {url[:200]}", retriable=False)
        async with gate.enter(url):
            started = time.monotonic()
            try:
                async with asyncio.timeout(budget - spent):
                    hop = await _get(client, state, url, limit)
            finally:
                spent += time.monotonic() - started
        if isinstance(hop, FetchResult):
            return FetchResult(
                hop.status_code, hop.headers, hop.content, url, url if seen and permanent else None
            )
        status, location = hop
        permanent = permanent and status in _PERMANENT
        seen.append(url)
        url = location
        if url in seen:
            raise FeedError("redirects", f"redirect loop at {url[:200]}")
        if len(seen) > MAX_REDIRECTS:
            raise FeedError("redirects", f"over {MAX_REDIRECTS} redirects")


_ROOT = re.compile(rb"<([A-Za-z_][\w:.-]*)")  # the first element's name


def ends_a_document(body: bytes) -> bool:
    """Whether ``body`` ends where its XML or JSON document does.

    A body that stops short of its document's end was cut by a Content-Length
    smaller than what the server sent (a CMS counting characters, not bytes);
    the rest of the bytes are still on the connection, ahead of the next answer.
    """
    end = body.rstrip()
    if body.lstrip()[:1] in (b"{", b"["):
        try:
            json.loads(body)
        except ValueError:
            return False
        return True
    # The root element is the first one not in a declaration, instruction or comment.
    stripped = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", b"", body[:4096], flags=re.S)
    root = _ROOT.search(stripped)
    return root is None or end.endswith(b"</" + root.group(1) + b">") or end.endswith(b"/>")


async def _get(
    client: httpx.AsyncClient, state: FeedState, url: str, limit: int
) -> FetchResult | tuple[int, str]:
    """One GET: the response, or a redirect's status and absolute location. (A
    kept-alive connection the server closed meanwhile is retried by aiohttp.)"""
    request = parsed_url(url)
    async with client.stream("GET", request, headers=_conditional_headers(state)) as response:
        if response.status_code not in (200, 304):  # a 304 has no body (RFC 9110 §15.4.5)
            await _drain(response)
        if response.status_code in _REDIRECT and "location" in response.headers:
            return response.status_code, str(response.url.join(response.headers["location"]))
        content = await _read(response, limit) if response.status_code == 200 else b""
        if content and not ends_a_document(content):
            # The rest of this body is still on the connection: close it rather
            # than let another feed read those bytes as its answer. The body
            # itself is parsed as what it is, a broken document.
            stream = response.extensions.get("network_stream")
            if stream is not None:
                await stream.aclose()
        return FetchResult(response.status_code, response.headers, content, url, None)
