"""Supervising a set of tasks: wait for the first to end, or for a signal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["first_failure", "until_first"]


async def until_first(
    tasks: Iterable[asyncio.Task[Any]], *events: asyncio.Event
) -> set[asyncio.Task[Any]]:
    """Wait until one of ``tasks`` ends or one of ``events`` is set.

    Returns:
        The tasks that have ended (empty when an event came first).
    """
    tasks = list(tasks)
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait([*tasks, *waiters], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return {task for task in tasks if task.done()}


def first_failure(tasks: Iterable[asyncio.Task[Any]]) -> BaseException | None:
    """The exception of the first ended task that failed (a cancelled one did not)."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            return task.exception()
    return None
