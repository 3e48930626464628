"""Peak memory and time of reading one huge feed body (``make bench``).

A feed of many small entries up to the body cap is the worst case for one poll:
feedparser holds the whole document, then the fetcher keeps the newest
``DOHAWATCH_FETCH_MAX_ENTRIES``. Each size is read in a fresh process, so its
peak RSS is its own. Writes ``.bench/feed_memory.json``; the Kubernetes manifest
gives the fetcher 512 MiB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from dohawatch.fetcher.core import FeedState, Reply, Schedule
from dohawatch.fetcher.reading import read_body
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.settings import load_settings

OUT = Path(__file__).resolve().parents[2] / ".bench"
SIZES = (1_000, 20_000, 118_000)  # the last fills the default 10 MiB body cap


def measure(entries: int) -> dict[str, float]:
    """Read a body of ``entries`` entries in this process; its figures."""
    items = "".join(
        f"<item><title>t{i}</title><guid>g{i}</guid><link>https://a.example/{i}</link></item>"
        for i in range(entries)
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    ).encode()
    feed = FeedConfig(url="https://a.example/feed", name="f")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    read = read_body(
        body,
        Reply(200, feed.url, content_type="application/rss+xml", body_hash="h"),
        state=FeedState(feed_key=feed.url, url=feed.url),
        feed=feed,
        now=datetime.now(UTC),
        schedule=Schedule(),
        topic="t",
        max_entries=load_settings().fetch_max_entries,
    )
    return {
        "entries": entries,
        "body_mib": round(len(body) / 2**20, 2),
        "published": len(read.messages),
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mib": round(before / 1024, 1),
    }


def main() -> int:
    if len(sys.argv) == 2:
        print(json.dumps(measure(int(sys.argv[1]))))
        return 0
    results = []
    for entries in SIZES:
        out = subprocess.run(  # noqa: S603 - this module, a number
            [sys.executable, "-m", "tests.bench.feed_memory", str(entries)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout))
        print(
            f"{entries:>8,} entries, {results[-1]['body_mib']:5.1f} MiB: "
            f"{results[-1]['seconds']:5.1f} s, peak RSS {results[-1]['peak_rss_mib']:6.1f} MiB"
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "feed_memory.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {OUT / 'feed_memory.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
