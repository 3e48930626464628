"""Durable story state in SQLite, written after the alerts are acknowledged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from dohawatch.shared.events import Alert

from .stories import Story

__all__ = ["StoryStore"]


class StoryStore:
    """Stories keyed by ``story_key``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS story (story_key TEXT PRIMARY KEY, "
            "alert TEXT NOT NULL, item_revisions TEXT NOT NULL)"
        )
        self._db.commit()

    def get(self, story_key: str) -> Story | None:
        """The story, or None if it has never alerted."""
        row = self._db.execute(
            "SELECT alert, item_revisions FROM story WHERE story_key = ?", (story_key,)
        ).fetchone()
        if row is None:
            return None
        return Story(Alert.model_validate_json(row[0]), json.loads(row[1]))

    def put_many(self, stories: list[Story]) -> None:
        """Store ``stories`` in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO story VALUES (?, ?, ?)",
                [
                    (s.alert.story_key, s.alert.model_dump_json(), json.dumps(s.item_revisions))
                    for s in stories
                ],
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()
