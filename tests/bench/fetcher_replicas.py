"""Fetcher replicas benchmark (``make bench``): fetch throughput with 1, 2 and 3
``dohawatch fetcher`` processes sharing the feeds on the embedded broker, against
a loopback feed server that answers each request after 50 ms, and how long a
rebalance takes when a replica joins or leaves.

Polling is network-bound here: each replica keeps ``PER_HOST`` requests in flight
(the per-host limit; every feed is on one host), so one replica tops out near
``PER_HOST / 0.05`` polls a second, and ``FEEDS`` feeds due every
``INTERVAL_SECONDS`` ask for more than three replicas give. Joining is timed
from a replica's start to its first poll (process start, group join, changelog
restore); leaving from a
replica's SIGTERM to the moment the survivors have polled all of its feeds.
Writes ``.bench/fetcher_replicas.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from . import on_embedded_broker, unpin

ROOT = Path(__file__).resolve().parents[2]
FEEDS = 300
PER_HOST = 2
INTERVAL_SECONDS = 2
DELAY_SECONDS = 0.05
WINDOW_SECONDS = 10.0
SETTLE_SECONDS = 15.0

# The feed server, in a process of its own: every answer after DELAY_SECONDS; a 304
# when the validator matches; /log is every request as [seconds, path, user agent].
SERVER = """
import asyncio, sys, time
from aiohttp import web
log = []
async def feed(request):
    await asyncio.sleep(float(sys.argv[1]))
    log.append([time.time(), request.path, request.headers.get("User-Agent", "")])
    n = request.match_info["n"]
    etag = f'"v-{n}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    body = f'<rss version="2.0"><channel><title>f{n}</title><item><title>t {n}</title>' \\
        f'<guid>g-{n}</guid></item></channel></rss>'
    return web.Response(body=body, content_type="application/rss+xml", headers={"ETag": etag})
async def dump(request):
    return web.json_response(log[int(request.query.get("after", 0)):])
app = web.Application()
app.add_routes([web.get("/feed/{n}.xml", feed), web.get("/log", dump)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _replica(
    bootstrap: str, name: str, config: Path, state: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "DOHAWATCH_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DOHAWATCH_KAFKA_IDEMPOTENCE": "false",
        "DOHAWATCH_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "DOHAWATCH_CONFIG_FILE": str(config),
        "DOHAWATCH_STATE_DIR": str(state / name),
        "DOHAWATCH_FETCHER_HTTP_PORT": "0",
        "DOHAWATCH_FETCH_CONTACT_URL": f"https://bench.example/{name}",
        "DOHAWATCH_FETCH_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
        "DOHAWATCH_FETCH_MIN_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
        "DOHAWATCH_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
        "DOHAWATCH_FETCH_HOST_MIN_GAP_SECONDS": "0",
        "DOHAWATCH_FETCH_PER_HOST": str(PER_HOST),
        "DOHAWATCH_TOPIC_PARTITIONS": "6",
        "DOHAWATCH_LOG_LEVEL": "ERROR",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dohawatch", "fetcher", env=env, stdout=asyncio.subprocess.DEVNULL
    )


class Log:
    """The feed server's request log, fetched a new part at a time."""

    def __init__(self, base: str) -> None:
        self.client = httpx.AsyncClient(base_url=base, timeout=30)
        self.rows: list[tuple[float, str, str]] = []

    async def read(self) -> list[tuple[float, str, str]]:
        new = (await self.client.get("/log", params={"after": len(self.rows)})).json()
        self.rows += [tuple(r) for r in new]  # type: ignore[misc]
        return self.rows

    async def wait(self, condition: object, seconds: float = 120) -> list[tuple[float, str, str]]:
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                log = await self.read()
            except httpx.TransportError:  # the server is still starting
                await asyncio.sleep(0.25)
                continue
            if condition(log):  # type: ignore[operator]
                return log
            await asyncio.sleep(0.25)
        raise TimeoutError("the replicas did not get there")


_started: list[asyncio.subprocess.Process] = []


def _agent(name: str) -> str:
    return f"(+https://bench.example/{name})"


async def main_async() -> dict[str, object]:
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, str(DELAY_SECONDS), str(port)
    )
    unpin(server.pid)
    log = Log(f"http://127.0.0.1:{port}")
    result: dict[str, object] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "feeds.yaml"
            feeds = [
                {"url": f"http://127.0.0.1:{port}/feed/{n}.xml", "name": f"f{n}"}
                for n in range(FEEDS)
            ]
            config.write_text(yaml.safe_dump({"feeds": feeds}))
            async with on_embedded_broker() as settings:  # replicas make their topics
                bootstrap = settings.kafka_bootstrap_servers or ""
                await log.wait(lambda _: True, 30)  # the server answers
                throughput: dict[str, float] = {}
                per_replica: dict[str, dict[str, float]] = {}
                running: dict[str, asyncio.subprocess.Process] = {}
                joins: list[float] = []
                for name in ("r1", "r2", "r3"):
                    started = time.time()
                    running[name] = await _replica(bootstrap, name, config, Path(tmp))
                    _started.append(running[name])
                    first = await log.wait(
                        lambda rows, n=name: any(_agent(n) in r[2] for r in rows)
                    )
                    joins.append(min(r[0] for r in first if _agent(name) in r[2]) - started)
                    await asyncio.sleep(SETTLE_SECONDS)
                    before = len(await log.read())
                    await asyncio.sleep(WINDOW_SECONDS)
                    window = (await log.read())[before:]
                    throughput[str(len(running))] = round(len(window) / WINDOW_SECONDS, 1)
                    per_replica[str(len(running))] = {
                        n: round(sum(_agent(n) in r[2] for r in window) / WINDOW_SECONDS, 1)
                        for n in running
                    }
                    print(f"  {len(running)} replica(s) measured", file=sys.stderr, flush=True)
                # r3 leaves: until r1 and r2 have polled every feed r3 polled last.
                rows = await log.read()
                recent = [r for r in rows if r[0] > time.time() - 3]
                r3_feeds = {r[1] for r in recent if _agent("r3") in r[2]}
                left = time.time()
                running["r3"].send_signal(signal.SIGTERM)
                await asyncio.wait_for(running.pop("r3").wait(), 60)

                def taken(rows: list[tuple[float, str, str]]) -> bool:
                    after = {r[1] for r in rows if r[0] > left and _agent("r3") not in r[2]}
                    return r3_feeds <= after

                done = await log.wait(taken)
                leave = (
                    max(min(r[0] for r in done if r[1] == f and r[0] > left) for f in r3_feeds)
                    - left
                )
                for process in running.values():
                    process.send_signal(signal.SIGTERM)
                for process in running.values():
                    await asyncio.wait_for(process.wait(), 60)
        one = throughput["1"]
        result = {
            "feeds": FEEDS,
            "answer_delay_seconds": DELAY_SECONDS,
            "per_host_in_flight": PER_HOST,
            "polls_per_second_by_replicas": throughput,
            "scaling_vs_one_replica": {k: round(v / one, 2) for k, v in throughput.items()},
            "polls_per_second_of_each_replica": per_replica,
            "join_seconds_to_first_poll": [round(j, 1) for j in joins],
            "leave_seconds_until_feeds_polled_again": round(leave, 1),
        }
    finally:
        for process in _started:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await log.client.aclose()
        server.terminate()
        await server.wait()
    return result


def main() -> int:
    result = asyncio.run(main_async())
    out = ROOT / ".bench"
    out.mkdir(exist_ok=True)
    (out / "fetcher_replicas.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"fetcher replicas, {FEEDS} feeds answering after {DELAY_SECONDS * 1000:.0f} ms:")
    for replicas, rate in result["polls_per_second_by_replicas"].items():  # type: ignore[attr-defined]
        scale = result["scaling_vs_one_replica"][replicas]  # type: ignore[index]
        each = result["polls_per_second_of_each_replica"][replicas]  # type: ignore[index]
        print(f"  {replicas} replica(s): {rate:,.0f} polls/s ({scale}x one); each: {each}")
    print(f"  join, start to first poll: {result['join_seconds_to_first_poll']} s")
    leave = result["leave_seconds_until_feeds_polled_again"]
    print(f"  leave, SIGTERM to its feeds polled again: {leave} s")
    print(f"written: {out / 'fetcher_replicas.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
