"""Fetcher replicas on one broker share the feeds by consumer-group assignment, and
a feed's state moves with its partition (services/fetcher/feed_table.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from dohawatch.app import RunPlan
from dohawatch.fetcher.feed_table import sync_feeds
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.kafka import Topics, ensure_topics
from dohawatch.shared.settings import Settings
from dohawatch.shared.tables import read_table

from .conftest import configure, read_topic, running

pytestmark = pytest.mark.integration

TOPICS = Topics.with_prefix("dohawatch.")
FEEDS = 30


class FeedFarm:
    """``FEEDS`` RSS feeds on loopback, two items each, with an ETag; it records who
    asked for which feed (the User-Agent names the replica) and with which validator."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []  # path, user agent, If-None-Match
        farm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                n = self.path.strip("/").removesuffix(".xml")
                etag = f'"v1-{n}"'
                farm.requests.append(
                    (self.path, self.headers["User-Agent"], self.headers["If-None-Match"])
                )
                if self.headers["If-None-Match"] == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                items = "".join(
                    f"<item><title>Gaza talks {n}.{i}</title><guid>feed-{n}-item-{i}</guid>"
                    f"<link>https://farm.example/{n}/{i}</link></item>"
                    for i in range(2)
                )
                body = f'<rss version="2.0"><channel><title>f{n}</title>{items}</channel></rss>'
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.feeds = tuple(
            FeedConfig(url=f"http://127.0.0.1:{self._server.server_port}/{n}.xml", name=f"f{n}")
            for n in range(FEEDS)
        )

    def pollers(self, path: str) -> set[str]:
        """The replicas (User-Agents) that asked for ``path``."""
        return {agent for p, agent, _ in self.requests if p == path}

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def farm() -> Iterator[FeedFarm]:
    server = FeedFarm()
    server.start()
    yield server
    server.stop()


def _replica(settings: Settings, tmp_path: Path, name: str) -> Settings:
    return configure(
        settings,
        state_dir=tmp_path / name,  # no shared disk: each replica its own cache
        fetch_contact_url=f"https://replica.example/{name}",
        fetch_interval_seconds=1.0,
        fetch_min_interval_seconds=1.0,
        topic_partitions=6,
    )


def _partitions(plan: RunPlan) -> int:
    """The partitions of the feeds topic the plan's fetcher holds."""
    ctx = plan.contexts.get("fetcher")
    value = ctx.registry.get_sample_value("dohawatch_fetch_partitions_assigned") if ctx else None
    return int(value or 0)


async def _until(condition: object, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_replicas_share_the_feeds_and_a_leavers_state_moves_to_its_successor(
    settings: Settings, farm: FeedFarm, tmp_path: Path
) -> None:
    """Two replicas poll disjoint halves of the feeds; when one leaves, the other
    polls its feeds with the validators the leaver last saw (from the changelog,
    not a disk they share), so nothing is published twice."""
    a, b = _replica(settings, tmp_path, "a"), _replica(settings, tmp_path, "b")
    agent = {name: f"(+https://replica.example/{name})" for name in "ab"}
    paths = [f"/{n}.xml" for n in range(FEEDS)]

    def polled_by(name: str) -> set[str]:
        return {p for p in paths if any(agent[name] in ua for ua in farm.pollers(p))}

    async with running(a, farm.feeds, services=["fetcher"]) as plan_a:
        async with running(b, services=["fetcher"]) as plan_b:  # no feeds of its own
            # Both replicas in the group with the six partitions shared out; then
            # each feed polled twice (a 304 the second time).
            await _until(
                lambda: (
                    _partitions(plan_a) + _partitions(plan_b) == 6
                    and _partitions(plan_a) * _partitions(plan_b) > 0
                    and polled_by("a")
                    and polled_by("b")
                ),
                40,
            )
            mark = len(farm.requests)
            await _until(
                lambda: all(sum(r[0] == p for r in farm.requests[mark:]) >= 2 for p in paths), 30
            )
            recent = farm.requests[mark:]
            owners = {p: {ua for q, ua, _ in recent if q == p} for p in paths}
            assert all(len(who) == 1 for who in owners.values()), owners
            b_feeds = {p for p, who in owners.items() if agent["b"] in next(iter(who))}
            assert b_feeds
            assert len(b_feeds) < FEEDS
        # b has left the group: a takes its partitions and their states.
        mark = len(farm.requests)
        await _until(lambda: all(any(r[0] == p for r in farm.requests[mark:]) for p in b_feeds), 40)
        taken = [r for r in farm.requests[mark:] if r[0] in b_feeds]
        first = {p: next(r for r in taken if r[0] == p) for p in b_feeds}
        for path, ua, etag in first.values():
            assert agent["a"] in ua
            assert etag == f'"v1-{path.strip("/").removesuffix(".xml")}"', path  # b's validator
    raw = await read_topic(a.kafka_bootstrap_servers or "", TOPICS.raw, 2 * FEEDS + 1, 10)
    keys = [r.key for r in raw]
    assert len(keys) == len(set(keys)) == 2 * FEEDS  # every entry once, none twice


async def test_sync_writes_the_list_and_tombstones_removed_feeds(
    settings: Settings, farm: FeedFarm
) -> None:
    """The table holds exactly the synced list; a second sync with one feed fewer
    writes nothing but the removal (and clears that feed's state)."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    await ensure_topics(settings, bootstrap, TOPICS)
    first = await sync_feeds(settings, bootstrap, TOPICS, farm.feeds[:5])
    assert len(first.written) == 5
    assert not first.removed
    again = await sync_feeds(settings, bootstrap, TOPICS, farm.feeds[:4])
    assert again.written == ()
    assert again.removed == (farm.feeds[4].url,)
    assert again.unchanged == 4
    table = await read_table(settings, bootstrap, TOPICS.feeds)
    live = {url for url, row in table.items() if row.value is not None}
    assert live == {f.url for f in farm.feeds[:4]}
    assert table[farm.feeds[4].url].value is None
    states = await read_table(settings, bootstrap, TOPICS.fetcher_state)
    assert states[farm.feeds[4].url].value is None


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DOHAWATCH_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "DOHAWATCH_STATE_DIR": str(settings.state_dir),
    }
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "dohawatch", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_feeds_sync_and_list_name_the_replica_that_polls_each_feed(
    settings: Settings, farm: FeedFarm, tmp_path: Path
) -> None:
    """`dohawatch feeds sync FILE` fills the table that a replica started without
    feeds polls; `dohawatch feeds list` shows every feed with that replica as owner."""
    replica = _replica(settings, tmp_path, "solo")
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump({"feeds": [f.model_dump() for f in farm.feeds[:6]]}))
    bootstrap = replica.kafka_bootstrap_servers or ""
    await ensure_topics(replica, bootstrap, TOPICS)
    synced = await asyncio.to_thread(_cli, replica, "feeds", "sync", str(config))
    assert synced.returncode == 0, synced.stderr
    assert "6 written, 0 removed, 0 unchanged" in synced.stdout
    async with running(replica, services=["fetcher"]) as plan:
        await _until(lambda: _partitions(plan) == 6, 30)
        await _until(lambda: all(farm.pollers(f"/{n}.xml") for n in range(6)), 30)
        listed = await asyncio.to_thread(_cli, replica, "feeds", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert "owner" in header.split()
    assert len(rows) == 6
    owner = f"dohawatch-fetcher@{socket.gethostname()}:{os.getpid()}"
    assert all(owner in row for row in rows), listed.stdout


async def _fetcher_process(
    settings: Settings, tmp_path: Path, name: str, config: Path
) -> asyncio.subprocess.Process:
    """``dohawatch fetcher`` as an operator starts it, in a process of its own."""
    env = {
        **os.environ,
        "DOHAWATCH_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "DOHAWATCH_KAFKA_IDEMPOTENCE": "false",
        "DOHAWATCH_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "DOHAWATCH_KAFKA_REBALANCE_TIMEOUT_MS": "1000",
        "DOHAWATCH_CONFIG_FILE": str(config),
        "DOHAWATCH_STATE_DIR": str(tmp_path / name),
        "DOHAWATCH_FETCHER_HTTP_PORT": "0",
        "DOHAWATCH_FETCH_CONTACT_URL": f"https://replica.example/{name}",
        "DOHAWATCH_FETCH_INTERVAL_SECONDS": "1",
        "DOHAWATCH_FETCH_MIN_INTERVAL_SECONDS": "1",
        "DOHAWATCH_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
        "DOHAWATCH_FETCH_HOST_MIN_GAP_SECONDS": "0",
        "DOHAWATCH_TOPIC_PARTITIONS": "6",
        "DOHAWATCH_LOG_LEVEL": "WARNING",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dohawatch",
        "fetcher",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_a_killed_replicas_feeds_are_taken_over_and_it_rejoins(
    settings: Settings, farm: FeedFarm, tmp_path: Path
) -> None:
    """Two fetcher processes share the feeds; SIGKILL one, and the other polls its
    feeds with the validators the dead one wrote to the changelog; started again,
    it takes a share back. Every entry reaches news.raw, each under one id."""
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump({"feeds": [f.model_dump() for f in farm.feeds]}))
    agent = {name: f"(+https://replica.example/{name})" for name in "ab"}
    paths = [f"/{n}.xml" for n in range(FEEDS)]

    def polled_by(name: str, since: int = 0) -> set[str]:
        return {r[0] for r in farm.requests[since:] if agent[name] in r[1]}

    processes = [await _fetcher_process(settings, tmp_path, n, config) for n in "ab"]
    try:
        await _until(lambda: polled_by("a") and polled_by("b"), 60)
        mark = len(farm.requests)  # shares settle, then every feed is polled twice
        await _until(
            lambda: all(sum(r[0] == p for r in farm.requests[mark:]) >= 3 for p in paths), 60
        )
        mark = len(farm.requests)
        await _until(lambda: len(farm.requests) - mark >= 2 * FEEDS, 30)
        b_feeds = polled_by("b", mark) - polled_by("a", mark)
        assert b_feeds
        processes[1].kill()
        await processes[1].wait()
        killed = len(farm.requests)
        await _until(lambda: b_feeds <= polled_by("a", killed), 60)
        for path in b_feeds:
            first = next(r for r in farm.requests[killed:] if r[0] == path and agent["a"] in r[1])
            assert first[2] == f'"v1-{path.strip("/").removesuffix(".xml")}"', path
        processes[1] = await _fetcher_process(settings, tmp_path, "b", config)
        back = len(farm.requests)
        await _until(lambda: polled_by("b", back), 60)
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), 30)
    raw = await read_topic(settings.kafka_bootstrap_servers or "", TOPICS.raw, 10 * FEEDS, 5)
    assert len({r.key for r in raw}) == 2 * FEEDS  # none missing; a replay keeps its id
