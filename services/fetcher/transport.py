"""The fetcher's HTTP client: httpx's API on aiohttp's connections.

httpx's own transport costs about three times aiohttp's CPU per conditional
GET (docs/performance.md), so the client sends through a transport on aiohttp,
HTTP/1.1 only. It is this module's own rather than ``httpx-aiohttp``'s (0.2),
which offers no way to close a connection whose answer overran its declared
length, and labels a server that hung up as a connect timeout.

Guards that live here, where every request of every hop passes:

- **The address policy, at connect time.** Host names are checked by the
  connector's resolver, on the very addresses it is about to connect to, so a
  DNS answer that changes between a check and the connection (rebinding) cannot
  slip through; aiohttp caches a checked answer for ``DNS_CACHE_SECONDS``. An IP
  literal never reaches a resolver, so it is checked before the request.
- **No cookies.** A poller is not a browser session: a feed server's cookies
  are neither kept nor sent back.
- **TLS verified** against certifi's CA bundle, the one httpx uses, or the
  context given.
- **Failures labelled by cause**: refused, dns, tls, timeout, unreachable, each a
  :class:`FeedError`.

Bodies reach httpx undecoded, so httpx decodes gzip, deflate and brotli and the
fetcher's size cap counts decoded bytes. A response carries httpx's
``network_stream`` extension, whose ``aclose()`` closes the connection.
"""

from __future__ import annotations

import functools
import http.cookiejar
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.request import Request

import aiohttp
import certifi
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from dohawatch.shared.errors import FeedError

__all__ = ["DNS_CACHE_SECONDS", "AddressPolicy", "feed_client"]

DNS_CACHE_SECONDS = 60
CHUNK_BYTES = 64 * 1024


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses feeds may resolve to: public ones, plus ``allowed`` networks."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, networks: str) -> AddressPolicy:
        """From a comma-separated list of CIDRs, e.g. ``127.0.0.0/8,::1/128``."""
        return cls(tuple(ipaddress.ip_network(n.strip()) for n in networks.split(",") if n.strip()))

    def permits(self, address: str) -> bool:
        """Whether feeds may be fetched from ``address`` (an IP address)."""
        return _permits(self, address)

    def refusal(self, host: str, denied: list[str]) -> str:
        """Why ``host`` is refused, naming the ``denied`` addresses and the remedy."""
        return (
            f"{host} resolves to a non-public address ({', '.join(denied)}); "
            "allow it with DOHAWATCH_FETCH_ALLOWED_NETWORKS"
        )


@functools.lru_cache(maxsize=4096)
def _permits(policy: AddressPolicy, address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if any(ip in net for net in policy.allowed):
        return True
    return ip.is_global and not ip.is_multicast


class AddressRefused(OSError):
    """A host resolved to addresses the policy does not permit."""


class _NoCookies(http.cookiejar.CookieJar):
    def extract_cookies(self, response: Any, request: Request) -> None:
        return None

    def add_cookie_header(self, request: Request) -> None:
        return None


class _PolicyResolver(AbstractResolver):
    """The default resolver, refusing an answer that holds an address the policy denies."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._resolver.resolve(host, port, family)
        denied = sorted({a["host"] for a in answers if not self._policy.permits(a["host"])})
        if denied:
            raise AddressRefused(self._policy.refusal(host, denied))
        return answers

    async def close(self) -> None:
        await self._resolver.close()


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in ``exc``'s chain of causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


DETAIL_CHARS = 300


def _failure(exc: Exception, host: str) -> FeedError:
    """A failed request as the fetcher labels it, its detail cut to ``DETAIL_CHARS``
    (aiohttp quotes a broken answer whole)."""
    if refused := _cause(exc, AddressRefused):
        return FeedError("refused", str(refused), retriable=False)
    if _cause(exc, aiohttp.ClientConnectorDNSError):
        return FeedError("dns", f"{host}: {_cause(exc, OSError) or exc}")
    if _cause(exc, aiohttp.ClientSSLError):
        return FeedError("tls", f"{host}: {exc}"[:DETAIL_CHARS])
    if _cause(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return FeedError("timeout", f"{host}: {type(exc).__name__} {exc}".strip())
    return FeedError("unreachable", f"{host}: {type(exc).__name__}: {exc}"[:DETAIL_CHARS])


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as httpx reads it, errors in httpx's terms."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK_BYTES):
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        self._response.release()


class _Connection:
    """httpx's ``network_stream`` extension: closing it closes the connection,
    rather than returning it to the pool."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def aclose(self) -> None:
        self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests on an aiohttp session made on first use (inside the
    running loop), whose connector checks addresses against ``policy``."""

    def __init__(
        self, policy: AddressPolicy, max_connections: int, tls: ssl.SSLContext | None = None
    ) -> None:
        self._policy = policy
        self._max_connections = max_connections
        self._tls = tls or ssl.create_default_context(cafile=certifi.where())
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            resolver=_PolicyResolver(self._policy),
            ttl_dns_cache=DNS_CACHE_SECONDS,
            ssl=self._tls,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            pass  # a name: its addresses are checked by the resolver
        else:
            if not self._policy.permits(str(literal)):
                raise FeedError("refused", self._policy.refusal(host, [host]), retriable=False)
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        try:
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=request.headers,
                data=await request.aread() or None,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, so its cap counts decoded bytes
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
            )
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            raise _failure(exc, host) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "network_stream": _Connection(response)},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def feed_client(
    policy: AddressPolicy,
    *,
    timeout: httpx.Timeout | float = 20.0,
    max_connections: int = 16,
    user_agent: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """A client for polling feeds: addresses checked against ``policy``, at most
    ``max_connections`` open, redirects left to the caller (which checks each
    hop's scheme and counts them), no cookies; certificates checked against
    ``tls`` (default: certifi's CA bundle, as httpx does)."""
    return httpx.AsyncClient(
        transport=AiohttpTransport(policy, max_connections, tls),
        timeout=timeout,
        follow_redirects=False,
        cookies=_NoCookies(),
        headers={"User-Agent": user_agent} if user_agent else None,
    )
