"""Supervising tasks: the first to end, or a signal, whichever comes first."""

from __future__ import annotations

import asyncio

from dohawatch.shared.tasks import first_failure, until_first


async def test_until_first_returns_the_tasks_that_ended_or_none_on_a_signal() -> None:
    """A task that ends is returned; a set event returns nothing and leaves the
    running tasks running; no waiter is left behind."""

    async def fail() -> None:
        raise ValueError("boom")

    slow = asyncio.create_task(asyncio.sleep(10))
    failing = asyncio.create_task(fail())
    ended = await until_first([slow, failing], asyncio.Event())
    assert ended == {failing}
    assert isinstance(first_failure(ended), ValueError)

    signal = asyncio.Event()
    signal.set()
    before = len(asyncio.all_tasks())
    assert await until_first([slow], signal) == set()
    assert not slow.done()
    assert len(asyncio.all_tasks()) == before  # the event's waiter is gone
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    assert first_failure([slow]) is None  # cancelled is not failed
