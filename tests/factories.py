"""Helpers the unit and integration tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], seconds: float = 20.0) -> None:
    """Wait for ``condition`` to be true, checking every 10 ms; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {seconds} s")
        await asyncio.sleep(0.01)
