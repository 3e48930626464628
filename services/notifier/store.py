"""Stories by partition: a SQLite cache of the ``notifier.stories`` changelog.

Each story is kept under the partition of ``news.classified`` it came from. A
story's record (``encode_story``) is written to the changelog, to that
partition, with the batch's alerts, before the input is committed; the cache is
written after the acknowledgement. When the group assigns a partition, its
rows are replaced by what the changelog holds (:mod:`.changelog`): the cache
never outranks the changelog.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError

from dohawatch.shared.events import Alert, Severity

from .stories import Story

__all__ = ["StoryStore", "decode_story", "encode_story"]

SCHEMA_VERSION = 2  # 2: rows carry their partition; a cache of version 1 is rebuilt


class _StoryRecord(BaseModel):
    """A story as the changelog and the cache hold it."""

    alert: Alert
    items: dict[str, int]
    generation: int
    feed_tags: list[str]
    base_severity: Severity | None


def encode_story(story: Story) -> bytes:
    """A ``notifier.stories`` record's value."""
    return (
        _StoryRecord(
            alert=story.alert,
            items=story.item_revisions,
            generation=story.generation,
            feed_tags=sorted(story.feed_tags),
            base_severity=story.base_severity,
        )
        .model_dump_json()
        .encode()
    )


def decode_story(value: bytes) -> Story | None:
    """The story of a record; None for a value that is no story (logged by the caller)."""
    try:
        record = _StoryRecord.model_validate_json(value)
    except ValidationError:
        return None
    return Story(
        record.alert,
        record.items,
        record.generation,
        frozenset(record.feed_tags),
        record.base_severity,
    )


def open_cache(path: Path, tables: str) -> sqlite3.Connection:
    """The SQLite cache at ``path`` with ``tables`` created; the tables of an older
    schema are dropped first (the changelogs rebuild them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        with db:
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall():
                db.execute(f'DROP TABLE "{name}"')
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
    db.executescript(tables)
    db.commit()
    return db


class StoryStore:
    """Stories keyed by ``story_key``, each under its partition."""

    def __init__(self, path: Path) -> None:
        self._db = open_cache(
            path,
            "CREATE TABLE IF NOT EXISTS stories (story_key TEXT PRIMARY KEY, "
            "partition INTEGER NOT NULL, record BLOB NOT NULL);"
            "CREATE INDEX IF NOT EXISTS stories_partition ON stories (partition);",
        )

    def get(self, story_key: str) -> Story | None:
        """The story, or None if it has never alerted."""
        row = self._db.execute(
            "SELECT record FROM stories WHERE story_key = ?", (story_key,)
        ).fetchone()
        return decode_story(row[0]) if row is not None else None

    def put_many(self, stories: Iterable[tuple[int, Story]]) -> None:
        """Store (partition, story) pairs in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO stories VALUES (?, ?, ?)",
                [(s.alert.story_key, p, encode_story(s)) for p, s in stories],
            )

    def replace_partition(self, partition: int, records: Mapping[str, bytes]) -> None:
        """Make ``partition`` hold exactly ``records`` (story key → encoded story)."""
        with self._db:
            self._db.execute("DELETE FROM stories WHERE partition = ?", (partition,))
            self._db.executemany(
                "INSERT OR REPLACE INTO stories VALUES (?, ?, ?)",
                [(key, partition, value) for key, value in records.items()],
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()
