"""Where alerts go besides the alerts topic."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from dohawatch.shared.events import Alert

__all__ = ["ConsoleSink", "Sink", "format_alert"]


class Sink(Protocol):
    """Something that delivers alerts to people."""

    name: str

    async def deliver(self, alert: Alert) -> None:
        """Deliver one alert revision; raise ``SinkError`` on failure."""
        ...


def format_alert(alert: Alert) -> str:
    """A few readable lines: severity, type, headline, sources."""
    head = (
        f"[{alert.severity.value.upper():<8}] {alert.event_type} "
        f"(rev {alert.revision}, {len(alert.sources)} source"
        f"{'s' if len(alert.sources) != 1 else ''})"
    )
    lines = [head, f"    {alert.headline}"]
    lines += [f"    - {s.outlet}: {s.url}" for s in alert.sources]
    if alert.evidence:
        lines.append("    why: " + "; ".join(f'"{e.text}"' for e in alert.evidence))
    return "\n".join(lines)


class ConsoleSink:
    """Prints each alert revision to a stream (stdout by default)."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    async def deliver(self, alert: Alert) -> None:
        print(format_alert(alert), file=self.stream, flush=True)
