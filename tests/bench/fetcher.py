"""Fetcher benchmark (``make bench``): 1,000 feeds of 20 items served by nginx on
loopback, polled side by side in one run by

- dohawatch (``poll_once``, as the service runs it);
- the peer ``reader`` (``update_feeds()``);
- the raw ceiling: aiohttp GETs and lxml reading each item's five fields, with
  nothing else (no state, no identity, no broker).

Two rounds each: every feed changed (200, every item new; dohawatch publishes
them to the embedded broker and waits for the acks, reader stores them in
SQLite), then every feed unchanged (304 through ETag / Last-Modified). The
Python process is pinned to one core; nginx and the broker get the other. The
three take turns ``REPEATS`` times, each on fresh state; reported are the
medians of polls per second (wall) and of CPU seconds per 1,000 polls (this
process), with every run's figure, and the ratios of the medians. Writes
``.bench/fetcher.json``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx

from dohawatch.fetcher.core import Schedule
from dohawatch.fetcher.http import HostGate
from dohawatch.fetcher.service import FetcherMetrics, Poller, poll_once
from dohawatch.fetcher.state import FeedStateStore
from dohawatch.fetcher.transport import AddressPolicy, feed_client
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.kafka import Topics, ensure_topics
from dohawatch.shared.runtime import service_context

from . import on_embedded_broker, pin_to_one_core, unpin

ROOT = Path(__file__).resolve().parents[2]
FEEDS, ITEMS = 1000, 20
CONCURRENCY = 8  # requests in flight, for each of the three
REPEATS = 3  # figures are the median of this many runs

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 100000;
    types {{ application/rss+xml xml; }}
    client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp; uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        etag on;
    }}
}}
"""


def write_feeds(www: Path) -> None:
    start = datetime(2025, 7, 1, tzinfo=UTC)
    for f in range(FEEDS):
        items = "".join(
            f"<item><title>Feed {f} item {i}: talks in Doha continue</title>"
            f"<link>https://outlet{f}.example/{i}</link><guid>f{f}-i{i}</guid>"
            f"<pubDate>{format_datetime(start + timedelta(hours=i))}</pubDate>"
            f"<description>Mediators from Qatar and Egypt met negotiators; item {i} of "
            f"feed {f} with a summary of a few sentences.</description></item>"
            for i in range(ITEMS)
        )
        (www / f"{f}.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Feed {f}</title><link>https://outlet{f}.example/</link>{items}"
            "</channel></rss>"
        )


def start_nginx(root: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    (root / "tmp").mkdir()
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=port))
    config = root / "nginx.conf"
    process = subprocess.Popen([binary, "-p", str(root), "-c", str(config)])  # noqa: S603
    unpin(process.pid)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/0.xml", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start: " + (root / "error.log").read_text())


async def dohawatch_rounds(urls: list[str], state: Path) -> list[tuple[float, float]]:
    async with on_embedded_broker(
        state_dir=state,
        fetch_allowed_networks="127.0.0.0/8",
        fetch_per_host=CONCURRENCY,  # every benchmark feed is on one host
        fetch_host_min_gap_seconds=0,
    ) as settings:
        bootstrap = settings.kafka_bootstrap_servers or ""
        await ensure_topics(settings, bootstrap, Topics.with_prefix(settings.topic_prefix))
        feeds = [FeedConfig(url=u, name=f"feed {i}") for i, u in enumerate(urls)]
        async with (
            service_context("fetcher", settings, bootstrap, 0, asyncio.Event()) as ctx,
            feed_client(
                AddressPolicy.parse(settings.fetch_allowed_networks), max_connections=CONCURRENCY
            ) as client,
        ):
            store = FeedStateStore(state / "fetcher.sqlite3")
            poller = Poller(
                client,
                store,
                FetcherMetrics(ctx.registry),
                HostGate(CONCURRENCY, 0, CONCURRENCY),
                Schedule.of(settings),
            )
            limit = asyncio.Semaphore(CONCURRENCY)

            async def one(feed: FeedConfig) -> None:
                async with limit:
                    await poll_once(ctx, poller, feed)

            rounds = []
            for _ in range(2):
                wall, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*(one(f) for f in feeds))
                rounds.append((time.perf_counter() - wall, time.process_time() - cpu))
            store.close()
            return rounds


async def ceiling_rounds(urls: list[str]) -> list[tuple[float, float]]:
    """aiohttp and lxml alone: GET and read each item's fields, then GET again
    conditionally; CONCURRENCY requests in flight, as for dohawatch."""
    import aiohttp
    from lxml import etree

    validators: dict[str, dict[str, str]] = {}
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(session: aiohttp.ClientSession, url: str) -> None:
        async with limit, session.get(url, headers=validators.get(url, {})) as response:
            body = await response.read()
            if response.status == 200:
                validators[url] = {"If-None-Match": response.headers["ETag"]}
                for item in etree.fromstring(body).iter("item"):
                    for name in ("title", "link", "guid", "pubDate", "description"):
                        item.findtext(name)

    rounds = []
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(2):
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(one(session, u) for u in urls))
            rounds.append((time.perf_counter() - wall, time.process_time() - cpu))
    return rounds


def reader_rounds(urls: list[str], state: Path) -> list[tuple[float, float]]:
    from reader import make_reader

    reader = make_reader(str(state / "reader.sqlite"))
    for url in urls:
        reader.add_feed(url)
    rounds = []
    for scheduled in (True, False):  # the second run must not skip feeds just updated
        wall, cpu = time.perf_counter(), time.process_time()
        reader.update_feeds(scheduled=scheduled, workers=4)
        rounds.append((time.perf_counter() - wall, time.process_time() - cpu))
    entries = reader.get_entry_counts().total
    reader.close()
    if entries != FEEDS * ITEMS:
        raise RuntimeError(f"reader stored {entries} entries, expected {FEEDS * ITEMS}")
    return rounds


def main() -> int:
    pin_to_one_core()
    with tempfile.TemporaryDirectory(prefix="dohawatch-bench-") as tmp:
        root = Path(tmp)
        (root / "www").mkdir()
        write_feeds(root / "www")
        port = 18080
        nginx = start_nginx(root, port)
        try:
            urls = [f"http://127.0.0.1:{port}/{f}.xml" for f in range(FEEDS)]
            # The three take turns, REPEATS times, each on fresh state: a shared
            # machine's slow spell then costs each of them alike.
            runs: dict[str, list[list[tuple[float, float]]]] = {
                "dohawatch": [],
                "reader": [],
                "ceiling": [],
            }
            for repeat in range(REPEATS):
                (root / f"d{repeat}").mkdir()
                (root / f"r{repeat}").mkdir()
                runs["dohawatch"].append(asyncio.run(dohawatch_rounds(urls, root / f"d{repeat}")))
                runs["reader"].append(reader_rounds(urls, root / f"r{repeat}"))
                runs["ceiling"].append(asyncio.run(ceiling_rounds(urls)))
        finally:
            nginx.terminate()
            nginx.wait()

    def figures(repeats: list[list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
        """The median of the repeats, per round."""
        out = {}
        for index, name in enumerate(("changed", "unchanged")):
            walls = [rounds[index][0] for rounds in repeats]
            cpus = [rounds[index][1] for rounds in repeats]
            out[name] = {
                "polls_per_second": round(FEEDS / statistics.median(walls), 1),
                "cpu_seconds_per_1000_polls": round(statistics.median(cpus) * 1000 / FEEDS, 2),
                "polls_per_second_each_run": [round(FEEDS / w, 1) for w in walls],
            }
        return out

    ours, peer, ceiling = runs["dohawatch"], runs["reader"], runs["ceiling"]

    measured = {"dohawatch": figures(ours), "reader": figures(peer), "ceiling": figures(ceiling)}
    ratios = {
        case: {
            f"dohawatch_to_{other}": round(
                measured["dohawatch"][case]["polls_per_second"]
                / measured[other][case]["polls_per_second"],
                2,
            )
            for other in ("reader", "ceiling")
        }
        for case in ("changed", "unchanged")
    }
    result = {
        "feeds": FEEDS,
        "items_per_feed": ITEMS,
        "repeats": REPEATS,
        **measured,
        "ratios": ratios,
    }
    out = ROOT / ".bench"
    out.mkdir(exist_ok=True)
    (out / "fetcher.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'':28}{'dohawatch':>11}{'reader':>9}{'ceiling':>9}{'/reader':>9}{'/ceiling':>9}")
    for case in ("changed", "unchanged"):
        for key, label in (
            ("polls_per_second", "polls/s"),
            ("cpu_seconds_per_1000_polls", "CPU s / 1000"),
        ):
            a, b, c = (measured[who][case][key] for who in ("dohawatch", "reader", "ceiling"))
            print(f"{case + ', ' + label:28}{a:>11}{b:>9}{c:>9}{a / b:>9.2f}{a / c:>9.2f}")
    print(f"written: {out / 'fetcher.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
