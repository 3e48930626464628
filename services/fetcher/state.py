"""Durable feed state in SQLite: one row per feed, written after the broker acks."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import fields
from datetime import datetime
from pathlib import Path

from .core import FeedState

__all__ = ["COMMIT_EVERY_SECONDS", "FeedStateStore"]

COMMIT_EVERY_SECONDS = 0.5
"""Writes are committed together at most this often (and on close)."""

_SCHEDULE = tuple(f.name for f in fields(FeedState) if f.name != "seen")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class FeedStateStore:
    """Feed states keyed by the configured URL.

    SQLite in WAL mode, on the event loop (a write is microseconds). A feed's
    seen ids are a column of their own, rewritten only when a poll read a new
    body: a 304 rewrites the few fields it changed. Writes are committed
    together every ``COMMIT_EVERY_SECONDS``; a crash loses at most that much
    state, which re-fetches and republishes items whose ids are unchanged, as
    any replay does.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL skips the fsync per commit and stays consistent; a power
        # cut may lose the last polls' state, which re-fetches and republishes items
        # whose ids are unchanged (https://www.sqlite.org/pragma.html#pragma_synchronous).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS feed_state (feed_key TEXT PRIMARY KEY, state TEXT NOT NULL)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(feed_state)")}
        if "seen" not in columns:  # a store written before the seen ids had their own column
            self._db.execute("ALTER TABLE feed_state ADD COLUMN seen TEXT")
        self._db.commit()
        self._committed = time.monotonic()
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None

    def get(self, feed_key: str) -> FeedState:
        """The stored state, or a fresh one polling ``feed_key`` itself."""
        row = self._db.execute(
            "SELECT state, seen FROM feed_state WHERE feed_key = ?", (feed_key,)
        ).fetchone()
        if row is None:
            return FeedState(feed_key=feed_key, url=feed_key)
        raw = json.loads(row[0])
        raw["seen"] = tuple(json.loads(row[1]) if row[1] is not None else raw.get("seen", ()))
        for key in ("last_success", "next_poll"):
            raw[key] = _dt(raw[key])
        return FeedState(**raw)

    def put(self, state: FeedState, *, seen: bool = True) -> None:
        """Store ``state``; its seen ids too unless ``seen`` is false (they are
        as stored). Committed within ``COMMIT_EVERY_SECONDS``."""
        schedule = json.dumps({name: getattr(state, name) for name in _SCHEDULE}, default=str)
        if seen:
            self._db.execute(
                "INSERT INTO feed_state (feed_key, state, seen) VALUES (?, ?, ?) "
                "ON CONFLICT (feed_key) DO UPDATE SET state = excluded.state, seen = excluded.seen",
                (state.feed_key, schedule, json.dumps(state.seen)),
            )
        else:
            self._db.execute(
                "INSERT INTO feed_state (feed_key, state, seen) VALUES (?, ?, '[]') "
                "ON CONFLICT (feed_key) DO UPDATE SET state = excluded.state",
                (state.feed_key, schedule),
            )
        self._dirty = True
        if time.monotonic() - self._committed >= COMMIT_EVERY_SECONDS:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop to commit later on
                self.flush()
            else:
                self._timer = loop.call_later(COMMIT_EVERY_SECONDS, self.flush)

    def flush(self) -> None:
        """Commit what was written."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._dirty:
            self._db.commit()
            self._dirty = False
        self._committed = time.monotonic()

    def all(self) -> list[FeedState]:
        """Every stored state."""
        keys = [r[0] for r in self._db.execute("SELECT feed_key FROM feed_state ORDER BY 1")]
        return [self.get(k) for k in keys]

    def close(self) -> None:
        """Commit and close the database."""
        self.flush()
        self._db.close()
