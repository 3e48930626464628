"""A process asked to stop exits within its grace period even when a task will not
finish, and its log names the task and where it waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import sys
import time

import pytest

from dohawatch.shared import runtime

PROGRAM = """
import asyncio, sys
from dohawatch.shared.logs import configure_logging
from dohawatch.shared.runtime import install_signal_handlers

async def holds_on():
    while True:  # swallows every cancellation, as a client stuck in its close can
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass

async def main():
    stop = asyncio.Event()
    install_signal_handlers(stop, grace_seconds=float(sys.argv[1]))
    if sys.argv[2] == "stuck":
        asyncio.create_task(holds_on(), name="stuck-client")  # left for asyncio.run to cancel
    print("ready", flush=True)
    await stop.wait()

configure_logging("INFO", "json")
asyncio.run(main())
"""


def _stopped(behaviour: str, grace: float) -> tuple[int, float, list[dict[str, object]]]:
    process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", PROGRAM, str(grace), behaviour],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    asked = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    took = time.monotonic() - asked
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return process.returncode, took, events


def test_a_stuck_stop_exits_with_code_1_naming_the_task_and_where_it_waits() -> None:
    code, took, events = _stopped("stuck", grace=0.5)
    assert code == 1
    assert took >= 0.5
    stuck = [e for e in events if e["event"] == "stop_stuck_task"]
    assert any(
        e["task"] == "stuck-client"
        and "holds_on" in str(e["waits_in"])
        and "sleep" in str(e["waits_in"])
        for e in stuck
    )
    assert events[-1]["event"] == "stop_stuck"


def test_a_stop_that_finishes_exits_cleanly_before_the_grace() -> None:
    code, took, events = _stopped("clean", grace=30.0)
    assert code == 0
    assert took < 30.0
    assert not [e for e in events if str(e["event"]).startswith("stop_stuck")]


async def test_a_client_close_that_ignores_its_cancellation_is_left_after_its_bound(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime, "SHUTDOWN_SECONDS", 0.2)
    released = asyncio.Event()

    async def close() -> None:  # as a consumer blocked in its group coordinator
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    caplog.set_level(logging.WARNING, logger="dohawatch")
    started = time.monotonic()
    await asyncio.wait_for(runtime.stop_within(close(), "test consumer"), 10)
    assert time.monotonic() - started < 5
    assert "stop_timeout" in caplog.text
    released.set()
    await asyncio.sleep(0)
