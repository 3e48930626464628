"""The fetcher against feed servers that misbehave, on loopback: redirects, gone
feeds, rate limits, refused addresses, bombs, drips and odd encodings."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import logging
import os
import signal
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import httpx
import pytest
import trustme
from aiokafka import TopicPartition

from dohawatch.fetcher.core import FeedState, Schedule
from dohawatch.fetcher.feed_table import GROUP_ID
from dohawatch.fetcher.http import FetchResult, HostGate, fetch
from dohawatch.fetcher.service import FetcherMetrics, Poller, _Owned, poll_once, run_fetcher
from dohawatch.fetcher.state import FeedStateStore
from dohawatch.fetcher.transport import AddressPolicy, feed_client
from dohawatch.shared.broker import EmbeddedBroker
from dohawatch.shared.config_file import FeedConfig, load_file_config
from dohawatch.shared.errors import FeedError
from dohawatch.shared.events import SUMMARY_CHARS, NewsItem
from dohawatch.shared.kafka import ensure_topics, make_consumer
from dohawatch.shared.runtime import ServiceContext, revoke_wait_seconds, service_context
from dohawatch.shared.settings import Settings
from tests.factories import until

from .conftest import configure, free_port, read_topic
from .servers import Answer, ScriptedServer, ShortLengthServer

pytestmark = pytest.mark.integration

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.example/</link>
<item><title>Israel recalls negotiating team from Doha</title><guid>w-1</guid>
<link>/2025/07/recall</link><pubDate>Thu, 24 Jul 2025 14:00:00 GMT</pubDate>
<description>&lt;p&gt;The team returns &amp;amp; consults.&lt;/p&gt;</description></item>
</channel></rss>"""


@contextlib.asynccontextmanager
async def fetcher(
    settings: Settings, **update: object
) -> AsyncIterator[tuple[ServiceContext, Poller]]:
    """A fetcher context, as ``run_fetcher`` builds it, without the scheduling loop."""
    settings = configure(settings, **update)
    async with service_context(
        "fetcher", settings, settings.kafka_bootstrap_servers or "", 0, asyncio.Event()
    ) as ctx:
        store = FeedStateStore(settings.state_dir / "fetcher.sqlite3")
        policy = AddressPolicy.parse(settings.fetch_allowed_networks)
        async with feed_client(policy, timeout=settings.fetch_timeout_seconds) as client:
            yield (
                ctx,
                Poller(
                    client,
                    store,
                    FetcherMetrics(ctx.registry),
                    HostGate(settings.fetch_per_host, settings.fetch_host_min_gap_seconds),
                    Schedule.of(settings),
                ),
            )
        store.close()


def feed(server: ScriptedServer, path: str = "/feed.xml") -> FeedConfig:
    return FeedConfig(url=f"{server.url}{path}", name="Wire")


@pytest.fixture
def server() -> ScriptedServer:
    s = ScriptedServer()
    s.default = Answer(200, RSS, {"Content-Type": "application/rss+xml"})
    s.start()
    yield s  # type: ignore[misc]
    s.stop()


async def test_a_308_moves_the_feed_and_later_polls_go_to_the_new_url(
    settings: Settings, server: ScriptedServer
) -> None:
    """A permanent redirect updates the stored URL; the item is read from the new place."""
    server.script = [Answer(308, b"", {"Location": "/moved.xml"})]
    async with fetcher(settings) as (ctx, poller):
        state = await poll_once(ctx, poller, feed(server))
        assert state.url == f"{server.url}/moved.xml"
        await poll_once(ctx, poller, feed(server))
    assert [r.path for r in server.requests] == ["/feed.xml", "/moved.xml", "/moved.xml"]
    items = await read_topic(settings.kafka_bootstrap_servers or "", "dohawatch.news.raw", 1)
    # The relative link is resolved against where the document came from.
    assert f'"url":"{server.url}/2025/07/recall"'.encode() in items[0].value


async def test_a_temporary_redirect_keeps_the_url_and_a_loop_is_an_error(
    settings: Settings, server: ScriptedServer
) -> None:
    """A 302 is followed without moving the feed; a redirect loop fails the poll."""
    server.script = [Answer(302, b"", {"Location": "/elsewhere.xml"})]
    loop = [Answer(301, b"", {"Location": "/b.xml"}), Answer(301, b"", {"Location": "/feed.xml"})]
    async with fetcher(settings) as (ctx, poller):
        state = await poll_once(ctx, poller, feed(server))
        assert state.url == feed(server).url
        assert state.failures == 0
        server.script = loop
        state = await poll_once(ctx, poller, feed(server))
    assert state.failures == 1
    assert state.url == feed(server).url


async def test_410_gone_disables_the_feed(settings: Settings, server: ScriptedServer) -> None:
    """After 410 the feed is marked disabled and counted as gone."""
    server.script = [Answer(410, b"gone")]
    async with fetcher(settings) as (ctx, poller):
        state = await poll_once(ctx, poller, feed(server))
        stored = poller.store.get(feed(server).url)
        metrics = ctx.registry.get_sample_value(
            "dohawatch_fetch_requests_total", {"feed": "Wire", "outcome": "gone"}
        )
    assert state.disabled
    assert stored.disabled
    assert metrics == 1


async def test_429_retry_after_pushes_the_next_poll_back(
    settings: Settings, server: ScriptedServer
) -> None:
    """Retry-After: 600 on a 429 schedules the next poll at least ten minutes out."""
    server.script = [Answer(429, b"slow down", {"Retry-After": "600"})]
    before = datetime.now(UTC)
    async with fetcher(settings, fetch_max_interval_seconds=7200) as (ctx, poller):
        state = await poll_once(ctx, poller, feed(server))
    assert state.next_poll is not None
    assert state.next_poll - before >= timedelta(seconds=600)
    assert state.failures == 1


async def test_503_bursts_back_off_and_recover(settings: Settings, server: ScriptedServer) -> None:
    """Each 503 doubles the wait; the first success resets the failures, and as it
    brought a new item the feed's pace quickens (half the interval)."""
    server.script = [Answer(503, b""), Answer(503, b""), Answer(503, b"")]
    waits = []
    async with fetcher(settings, fetch_interval_seconds=10, fetch_min_interval_seconds=1) as (
        ctx,
        poller,
    ):
        for _ in range(4):
            start = datetime.now(UTC)
            state = await poll_once(ctx, poller, feed(server))
            assert state.next_poll is not None
            waits.append(round((state.next_poll - start).total_seconds()))
    assert waits[:3] == [20, 40, 80]
    assert state.failures == 0
    assert waits[3] == 5


async def test_private_addresses_are_refused_unless_allowed(
    settings: Settings, server: ScriptedServer
) -> None:
    """Without an allowance a loopback feed is refused before any request is made."""
    async with fetcher(settings, fetch_allowed_networks="") as (ctx, poller):
        state = await poll_once(ctx, poller, feed(server))
        refused = ctx.registry.get_sample_value(
            "dohawatch_fetch_requests_total", {"feed": "Wire", "outcome": "refused"}
        )
    assert state.failures == 1
    assert refused == 1
    assert server.requests == []


async def test_a_redirect_to_a_private_address_is_refused(
    settings: Settings, server: ScriptedServer
) -> None:
    """Every hop is checked: a public-looking feed may not bounce us into the network."""
    server.script = [Answer(302, b"", {"Location": "http://169.254.169.254/latest/meta-data"})]
    async with fetcher(settings) as (ctx, poller):
        state = await poll_once(ctx, poller, feed(server))
        refused = ctx.registry.get_sample_value(
            "dohawatch_fetch_requests_total", {"feed": "Wire", "outcome": "refused"}
        )
    assert refused == 1
    assert state.failures == 1
    assert len(server.requests) == 1


async def test_oversized_bodies_and_gzip_bombs_stop_at_the_cap(
    settings: Settings, server: ScriptedServer
) -> None:
    """The cap counts decoded bytes: 64 MiB of zeros gzipped to 64 KiB stops at 1 MiB."""
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    server.script = [
        Answer(200, b"x" * (2 * 1024 * 1024)),
        Answer(200, bomb, {"Content-Encoding": "gzip"}),
    ]
    async with fetcher(settings, fetch_max_body_bytes=1024 * 1024) as (ctx, poller):
        await poll_once(ctx, poller, feed(server))
        await poll_once(ctx, poller, feed(server))
        too_large = ctx.registry.get_sample_value(
            "dohawatch_fetch_requests_total", {"feed": "Wire", "outcome": "too-large"}
        )
    assert len(bomb) < 100_000
    assert too_large == 2


async def test_a_slow_drip_trips_the_total_timeout(
    settings: Settings, server: ScriptedServer
) -> None:
    """A server sending a byte now and then is cut off at the poll's total timeout."""
    server.script = [Answer(200, RSS, drip=0.2)]
    started = time.monotonic()
    async with fetcher(settings, fetch_total_timeout_seconds=1.0) as (ctx, poller):
        await poll_once(ctx, poller, feed(server))
        timeouts = ctx.registry.get_sample_value(
            "dohawatch_fetch_requests_total", {"feed": "Wire", "outcome": "timeout"}
        )
    assert timeouts == 1
    assert time.monotonic() - started < 5


async def test_a_billion_laughs_document_is_harmless(
    settings: Settings, server: ScriptedServer
) -> None:
    """Nested entities are not expanded: the poll ends at once with a short title."""
    entities = "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 20}">' for i in range(8)
    )
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{"a" * 60}">{entities}]>'
        '<rss version="2.0"><channel><title>t</title><item><title>&i;</title><guid>b-1</guid>'
        "<link>https://x.example/1</link></item></channel></rss>"
    ).encode()
    server.script = [Answer(200, body)]
    started = time.monotonic()
    async with fetcher(settings) as (ctx, poller):
        await poll_once(ctx, poller, feed(server))
        malformed = ctx.registry.get_sample_value(
            "dohawatch_fetch_malformed_total", {"feed": "Wire"}
        )
    assert time.monotonic() - started < 5
    assert malformed == 1, "the refused entity makes the body malformed, and counted"
    items = await read_topic(settings.kafka_bootstrap_servers or "", "dohawatch.news.raw", 1, 3)
    assert len(items) == 1, "the entry is still read"
    assert len(items[0].value) < 10_000, "its title was not expanded"


async def test_a_windows_1252_feed_and_a_changed_guid(
    settings: Settings, server: ScriptedServer
) -> None:
    """Declared cp1252 text is decoded; the same story under a new GUID is not republished."""
    body = RSS.replace(b"utf-8", b"windows-1252").replace(b"from Doha", b"from Doha \x96 sources")
    changed = body.replace(b"<guid>w-1</guid>", b"<guid>w-1-updated</guid>")
    server.script = [Answer(200, body), Answer(200, changed)]
    async with fetcher(settings) as (ctx, poller):
        await poll_once(ctx, poller, feed(server))
        await poll_once(ctx, poller, feed(server))
        new = ctx.registry.get_sample_value("dohawatch_fetch_items_total", {"feed": "Wire"})
    items = await read_topic(settings.kafka_bootstrap_servers or "", "dohawatch.news.raw", 2, 3)
    assert new == 1
    assert len(items) == 1
    assert "from Doha – sources" in items[0].value.decode()


async def test_polls_to_one_host_keep_their_gap(settings: Settings, server: ScriptedServer) -> None:
    """Three feeds on one host are requested at least the minimum gap apart."""
    feeds = [feed(server, f"/f{i}.xml") for i in range(3)]
    feeds = [f.model_copy(update={"name": f"Wire {i}"}) for i, f in enumerate(feeds)]
    async with fetcher(settings, fetch_host_min_gap_seconds=0.3) as (ctx, poller):
        await asyncio.gather(*(poll_once(ctx, poller, f) for f in feeds))
    starts = sorted(r.received for r in server.requests)
    assert len(starts) == 3
    assert all(b - a >= 0.28 for a, b in itertools.pairwise(starts))


async def test_sighup_reloads_the_feed_list_without_a_restart(
    settings: Settings, server: ScriptedServer, tmp_path: Path
) -> None:
    """A feed added to the file is polled after SIGHUP; a broken file keeps the old list."""
    config = tmp_path / "feeds.yaml"
    config.write_text(f"feeds:\n  - {{url: '{server.url}/a.xml', name: A}}\n")
    settings = configure(settings, config_file=config)
    stop = asyncio.Event()
    async with service_context(
        "fetcher", settings, settings.kafka_bootstrap_servers or "", 0, stop
    ) as ctx:
        task = asyncio.create_task(run_fetcher(ctx, load_file_config(config).feeds))
        try:
            await until(lambda: any(r.path == "/a.xml" for r in server.requests))
            config.write_text("feeds: [not: valid")
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0.5)
            assert not task.done(), "a broken file does not stop the fetcher"
            config.write_text(
                f"feeds:\n  - {{url: '{server.url}/a.xml', name: A}}\n"
                f"  - {{url: '{server.url}/b.xml', name: B}}\n"
            )
            os.kill(os.getpid(), signal.SIGHUP)
            await until(lambda: any(r.path == "/b.xml" for r in server.requests))
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def test_brotli_and_gzip_bodies_are_decoded(
    settings: Settings, server: ScriptedServer
) -> None:
    """Compressed feeds are read like plain ones."""
    server.script = [
        Answer(200, brotli.compress(RSS), {"Content-Encoding": "br"}),
        Answer(
            200,
            gzip.compress(RSS.replace(b"w-1", b"w-2").replace(b"recalls", b"returns")),
            {"Content-Encoding": "gzip"},
        ),
    ]
    async with fetcher(settings) as (ctx, poller):
        await poll_once(ctx, poller, feed(server))
        await poll_once(ctx, poller, feed(server))
        new = ctx.registry.get_sample_value("dohawatch_fetch_items_total", {"feed": "Wire"})
    assert new == 2, "each body was decoded and parsed"
    headers = {name.lower(): value for name, value in server.requests[0].headers.items()}
    assert "br" in headers["accept-encoding"]


async def test_requests_in_flight_are_capped_in_all(
    settings: Settings, server: ScriptedServer
) -> None:
    """With fetch_max_in_flight=1 three slow feeds are fetched one after the other."""
    server.default = Answer(200, RSS, delay=0.3)
    feeds = [feed(server, f"/f{i}.xml").model_copy(update={"name": f"W{i}"}) for i in range(3)]
    async with fetcher(settings, fetch_per_host=3) as (ctx, poller):
        poller = replace(poller, gate=HostGate(3, 0, total=1))
        await asyncio.gather(*(poll_once(ctx, poller, f) for f in feeds))
    starts = sorted(r.received for r in server.requests)
    assert all(b - a >= 0.28 for a, b in itertools.pairwise(starts))


LOOPBACK = AddressPolicy.parse("127.0.0.0/8")


async def get(client: httpx.AsyncClient, url: str, gate: HostGate, total: float) -> FetchResult:
    """One checked GET of ``url`` on loopback, as a poll makes it."""
    return await fetch(
        client,
        FeedState(feed_key=url, url=url),
        limit=1 << 20,
        gate=gate,
        total=total,
    )


async def test_waiting_for_a_busy_hosts_turn_is_not_a_timeout(server: ScriptedServer) -> None:
    """Eight feeds on one host, one request at a time 0.2 s apart, each answered in 0.1 s:
    the last waits about 1.5 s for its turn yet none times out under a 0.5 s limit,
    which bounds the requests, not the queue."""
    server.default = Answer(200, RSS, {"Content-Type": "application/rss+xml"}, delay=0.1)
    gate = HostGate(per_host=1, min_gap=0.2)
    async with feed_client(LOOPBACK) as client:
        started = time.monotonic()
        results = await asyncio.gather(
            *(get(client, f"{server.url}/f{i}.xml", gate, total=0.5) for i in range(8))
        )
        elapsed = time.monotonic() - started
    assert [r.status_code for r in results] == [200] * 8
    assert elapsed >= 1.4  # the queue really was longer than the limit


async def test_a_request_that_is_slow_still_times_out(server: ScriptedServer) -> None:
    """The limit still holds for the request itself: a 1 s answer fails a 0.3 s limit."""
    server.default = Answer(200, RSS, {"Content-Type": "application/rss+xml"}, delay=1.0)
    async with feed_client(LOOPBACK) as client:
        with pytest.raises(FeedError) as raised:
            await get(client, f"{server.url}/slow.xml", HostGate(1, 0.0), total=0.3)
    assert raised.value.outcome == "timeout"


GOOD_FEED = RSS
# An answer that a Content-Length too short leaves behind: a complete, valid
# response, which the next request on the connection would read as its own.
INJECTED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 94\r\n\r\n"
    b'<rss version="2.0"><channel><title>x</title><item><title>INJECTED</title>'
    b"</item></channel></rss>"
)


@pytest.mark.parametrize(
    ("leftover", "what"),
    [(b"\xd8\xa7\xd9\x84 trailing bytes", "garbage"), (INJECTED, "a whole response")],
)
async def test_bytes_a_short_content_length_leaves_never_reach_another_feed(
    leftover: bytes, what: str
) -> None:
    """A first answer whose Content-Length is shorter than its body leaves bytes on
    the kept-alive connection (garbage, or a whole forged response). That answer
    fails, or is read as the broken document it is, and its connection is closed:
    the next feed on that host gets its own answer, neither an "illegal status
    line" nor the forgery."""
    truncated = RSS.replace(b"</channel></rss>", b"</channel>") + leftover
    server = ShortLengthServer(first=truncated, short=len(leftover), good=GOOD_FEED)
    server.start()
    gate = HostGate(per_host=1, min_gap=0.0)
    try:
        async with feed_client(LOOPBACK) as client:
            first: FetchResult | FeedError
            try:
                first = await get(client, f"{server.url}/a.xml", gate, total=5)
            except FeedError as exc:  # aiohttp read the overrun as a bad status line
                first = exc
            second = await get(client, f"{server.url}/b.xml", gate, total=5)
    finally:
        server.stop()
    if isinstance(first, FeedError):
        assert first.outcome == "unreachable", what
        assert len(str(first)) < 600, "the error quotes a bounded part of the answer"
    else:
        assert leftover not in first.content, what
    assert second.status_code == 200
    assert second.content == GOOD_FEED
    assert b"INJECTED" not in second.content


async def test_an_entry_with_a_huge_summary_is_published_capped_with_its_neighbours(
    settings: Settings, server: ScriptedServer
) -> None:
    """A 1.2 MB summary is cut to the contract's length and published, the entry after
    it too; a feed whose link has a port that is no number loses that entry alone."""
    huge = "Gaza talks. " * 100_000  # 1.2 MB
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>W</title>'
        f"<item><title>Huge</title><guid>h-1</guid><link>/huge</link><description>{huge}"
        "</description></item>"
        "<item><title>Bad port</title><guid>h-2</guid><link>http://a.example:port/x</link></item>"
        "<item><title>After</title><guid>h-3</guid><link>/after</link></item>"
        "</channel></rss>"
    ).encode()
    server.default = Answer(200, body, {"Content-Type": "application/rss+xml"})
    async with fetcher(settings) as (ctx, poller):
        state = await poll_once(ctx, poller, feed(server))
        rejected = ctx.registry.get_sample_value(
            "dohawatch_fetch_entries_rejected_total", {"feed": "Wire"}
        )
    items = await read_topic(settings.kafka_bootstrap_servers or "", "dohawatch.news.raw", 2)
    published = {NewsItem.model_validate_json(r.value).title: r for r in items}
    assert state.failures == 0
    assert set(published) == {"Huge", "After"}
    summary = NewsItem.model_validate_json(published["Huge"].value).summary
    assert len(summary) == SUMMARY_CHARS
    assert rejected == 1


async def test_reading_a_huge_feed_leaves_the_event_loop_free(
    settings: Settings, server: ScriptedServer
) -> None:
    """While a body of 20,000 entries is parsed (seconds of work), other coroutines,
    every other feed's schedule among them, keep running: the longest stall of a
    20 ms ticker stays far below the parse time."""
    # An extension element sends it to feedparser, the slow path.
    items = "".join(
        f"<item><title>t{i}</title><guid>g{i}</guid><link>/{i}</link><x:n>{i}</x:n></item>"
        for i in range(20_000)
    )
    body = (
        '<?xml version="1.0"?><rss version="2.0" xmlns:x="https://x.example/ns"><channel>'
        f"<title>W</title>{items}</channel></rss>"
    )
    server.default = Answer(200, body.encode(), {"Content-Type": "application/rss+xml"})
    gaps: list[float] = []

    async def tick(stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with fetcher(settings) as (ctx, poller):
        stop = asyncio.Event()
        ticker = asyncio.create_task(tick(stop))
        started = time.monotonic()
        state = await poll_once(ctx, poller, feed(server))
        took = time.monotonic() - started
        stop.set()
        await ticker
    assert state.failures == 0
    assert took > 1.0  # the parse is long enough to matter
    assert max(gaps) < 0.5


@pytest.fixture
def https_feed() -> Iterator[tuple[str, trustme.CA]]:
    """An HTTPS server on 127.0.0.1 serving RSS, with a certificate from a throwaway CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(RSS)))
            self.end_headers()
            self.wfile.write(RSS)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/feed.xml", ca
    server.shutdown()
    server.server_close()


async def test_https_feeds_are_verified_against_the_trusted_authorities(
    https_feed: tuple[str, trustme.CA],
) -> None:
    """A feed served over TLS is read when its certificate chains to a trusted
    authority; with certifi's bundle alone the same certificate is refused as a
    `tls` failure, never read."""
    url, ca = https_feed
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with feed_client(LOOPBACK, tls=trusting) as client:
        result = await get(client, url, HostGate(1, 0.0), total=5)
    assert (result.status_code, result.content) == (200, RSS)
    async with feed_client(LOOPBACK) as client:
        with pytest.raises(FeedError) as refused:
            await get(client, url, HostGate(1, 0.0), total=5)
    assert refused.value.outcome == "tls"
    assert "certificate" in str(refused.value).lower()


async def test_a_revoke_gives_up_a_flush_the_broker_does_not_answer(
    settings: Settings, broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A revoke stops its feeds' loops and flushes their states within
    ``revoke_wait_seconds``: the group's rebalance waits for it, so a broker that
    stops answering must not hold the revoke (docs/kafka.md)."""
    caplog.set_level(logging.INFO, logger="dohawatch.fetcher")
    async with fetcher(settings) as (ctx, poller):
        topic = ctx.topics.fetcher_state
        await ensure_topics(ctx.settings, ctx.bootstrap, ctx.topics)
        await (await ctx.producer.send(topic, b"known", key=b"k"))  # metadata in hand
        consumer = make_consumer(ctx.settings, ctx.bootstrap, GROUP_ID)
        owned = _Owned(ctx, poller, consumer)
        pid = broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            unacknowledged = await ctx.producer.send(topic, b"pending", key=b"k")
            started = time.monotonic()
            await owned.on_partitions_revoked([TopicPartition(ctx.topics.feeds, 0)])
            took = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
            await consumer.stop()
        await asyncio.wait_for(unacknowledged, 60)  # kept, and sent once the broker answers
    assert took < revoke_wait_seconds(ctx.settings) + 10  # the flush alone was bounded at 60 s
    (revoked,) = [r for r in caplog.records if r.getMessage() == "partitions_revoked"]
    fields = revoked.dohawatch_fields
    assert fields["flushed"] is False
    assert fields["duration_seconds"] >= revoke_wait_seconds(ctx.settings) * 0.9


async def test_a_revoke_leaves_a_loop_that_does_not_end_to_end_cancelled(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A feed loop still running ``revoke_wait_seconds`` after it was cancelled does
    not hold the revoke: it is logged with where it waits, and ends cancelled later."""
    caplog.set_level(logging.INFO, logger="dohawatch.fetcher")
    release = asyncio.Event()

    async def stubborn() -> None:  # a loop whose first cancellation does not end it
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()
            raise

    async with fetcher(settings) as (ctx, poller):
        consumer = make_consumer(ctx.settings, ctx.bootstrap, GROUP_ID)
        owned = _Owned(ctx, poller, consumer)
        loop = asyncio.create_task(stubborn(), name="Wire")
        await asyncio.sleep(0)
        owned.loops["https://wire.example/feed"] = (
            0,
            FeedConfig(url="https://wire.example/feed", name="Wire"),
            loop,
        )
        started = time.monotonic()
        try:
            revoking = owned.on_partitions_revoked([TopicPartition(ctx.topics.feeds, 0)])
            await asyncio.wait_for(revoking, 30)  # unbounded, it would wait for the loop
            took = time.monotonic() - started
            assert not loop.done()
            assert owned.loops == {}
        finally:
            release.set()
            await consumer.stop()
        with pytest.raises(asyncio.CancelledError):
            await loop
    assert took < revoke_wait_seconds(ctx.settings) + 10
    (slow,) = [r for r in caplog.records if r.getMessage() == "feed_loop_stop_slow"]
    assert slow.dohawatch_fields["feed"] == "Wire"
    assert "stubborn" in slow.dohawatch_fields["waits_in"]


async def test_partitions_whose_state_cannot_be_read_are_still_polled(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A replica assigned partitions whose state it cannot read (the broker went away
    under the read, or stalled it) takes them with the state it has and says so,
    instead of leaving their feeds unpolled until the next rebalance."""
    caplog.set_level(logging.INFO, logger="dohawatch.fetcher")
    async with fetcher(settings) as (ctx, poller):
        await ensure_topics(ctx.settings, ctx.bootstrap, ctx.topics)
        consumer = make_consumer(ctx.settings, ctx.bootstrap, GROUP_ID)
        await consumer.start()
        try:
            tp = TopicPartition(ctx.topics.feeds, 0)
            consumer.assign([tp])
            unreachable = replace(ctx, bootstrap=f"127.0.0.1:{free_port()}")
            owned = _Owned(unreachable, poller, consumer)
            await asyncio.wait_for(owned.on_partitions_assigned([tp]), 60)
        finally:
            await consumer.stop()
    assert owned.partitions == {0}
    (failed,) = [r for r in caplog.records if r.getMessage() == "state_restore_failed"]
    assert failed.dohawatch_fields["partitions"] == "0"
