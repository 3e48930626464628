"""Durable story state in SQLite, written after the alerts are acknowledged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from dohawatch.shared.events import Alert, Severity

from .stories import Story

__all__ = ["StoryStore"]


class StoryStore:
    """Stories keyed by ``story_key``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS stories (story_key TEXT PRIMARY KEY, "
            "alert TEXT NOT NULL, state TEXT NOT NULL)"
        )
        self._db.commit()

    def get(self, story_key: str) -> Story | None:
        """The story, or None if it has never alerted."""
        row = self._db.execute(
            "SELECT alert, state FROM stories WHERE story_key = ?", (story_key,)
        ).fetchone()
        if row is None:
            return None
        state = json.loads(row[1])
        return Story(
            Alert.model_validate_json(row[0]),
            state["items"],
            state["generation"],
            frozenset(state["feed_tags"]),
            Severity(state["base_severity"]) if state["base_severity"] else None,
        )

    def put_many(self, stories: list[Story]) -> None:
        """Store ``stories`` in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO stories VALUES (?, ?, ?)",
                [
                    (
                        s.alert.story_key,
                        s.alert.model_dump_json(),
                        json.dumps(
                            {
                                "items": s.item_revisions,
                                "generation": s.generation,
                                "feed_tags": sorted(s.feed_tags),
                                "base_severity": s.base_severity,
                            }
                        ),
                    )
                    for s in stories
                ],
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()
