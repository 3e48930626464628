"""Helpers the unit and integration tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dohawatch.shared.events import Alert, Severity


async def until(condition: Callable[[], object], seconds: float = 20.0) -> None:
    """Wait for ``condition`` to be true, checking every 10 ms; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {seconds} s")
        await asyncio.sleep(0.01)


def alert(**fields: Any) -> Alert:
    """A valid alert revision: a high-severity recall, first seen now, with ``fields``."""
    now = datetime.now(UTC)
    return Alert(
        **{
            "alert_id": "al1-a",
            "story_key": "st1-s",
            "event_type": "delegation_withdrawn",
            "severity": Severity.HIGH,
            "headline": "Israel recalls its negotiating team from Doha",
            "summary": "The delegation returns for consultations.",
            "sources": (),
            "first_seen": now,
            "updated_at": now,
            "revision": 1,
            "evidence": (),
            **fields,
        }
    )
