"""Structured logs: one event per unit of work, JSON in production, readable on a TTY.

``log_event(log, "processed", status="ok", item_id=...)`` is the only way the
services log work. Configured secret values are replaced by ``***`` in every
record, whatever field they end up in.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = ["configure_logging", "log_event"]

_FIELDS = "dohawatch_fields"


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log ``event`` with structured ``fields`` (ids, ``status=``, durations in seconds)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_FIELDS: fields})


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class _JsonFormatter(logging.Formatter):
    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, _FIELDS, {}),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(payload, default=str, ensure_ascii=False))


class _ConsoleFormatter(logging.Formatter):
    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, _FIELDS, {}).items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()} {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.redact(line.rstrip())


def configure_logging(
    level: str, fmt: str, secrets: Iterable[str] = (), stream: Any = None
) -> None:
    """Send every log record to ``stream`` (stderr) as JSON or console text.

    Args:
        level: ``DEBUG``..``ERROR``.
        fmt: ``json``, ``console`` or ``auto`` (console on a terminal, else JSON).
        secrets: values to redact wherever they appear.
    """
    stream = stream or sys.stderr
    redact = _Redactor(secrets)
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_ConsoleFormatter(redact) if fmt == "console" else _JsonFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every rebalance and retry at INFO; its warnings still show.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
