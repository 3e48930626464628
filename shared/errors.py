"""One exception tree for dohawatch.

Library errors are translated into these at the edge that calls the library
(``raise ... from exc``). ``retriable`` tells a caller whether trying the same
thing again later can succeed. :func:`validation_problems` words a pydantic
validation error the one way every configuration error is worded.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

__all__ = [
    "BrokerError",
    "ConfigError",
    "DecodeError",
    "DohawatchError",
    "FeedError",
    "PackError",
    "SinkError",
    "key_path",
    "validation_problems",
]


class DohawatchError(Exception):
    """Base of every error dohawatch raises on purpose."""

    retriable: bool = False


class ConfigError(DohawatchError):
    """A setting or configuration file is invalid; the message names the key."""


class PackError(ConfigError):
    """A topic pack failed validation; the message names the key path."""


class DecodeError(DohawatchError):
    """A Kafka message could not be decoded or validated against its contract.

    Attributes:
        reason: a short machine-readable reason (``bad-json``, ``wrong-type``...),
            put in the dead-letter headers.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BrokerError(DohawatchError):
    """The Kafka broker could not be reached or refused a request."""

    retriable = True


class FeedError(DohawatchError):
    """A feed could not be fetched or parsed.

    Attributes:
        outcome: the bounded label used in metrics (``timeout``, ``5xx``...).
    """

    def __init__(self, outcome: str, detail: str, *, retriable: bool = True) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome
        self.retriable = retriable


class SinkError(DohawatchError):
    """A sink (Slack, SMTP, webhook) refused or failed a delivery.

    Attributes:
        outcome: the bounded label used in metrics (``429``, ``5xx``, ``timeout``...).
        retry_after: seconds the server asked us to wait, if it said.
    """

    def __init__(
        self,
        outcome: str,
        detail: str,
        *,
        retriable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome
        self.retriable = retriable
        self.retry_after = retry_after


def key_path(loc: tuple[int | str, ...]) -> str:
    """A validation error's location as a dotted key path (``events.recall.rules.0``)."""
    return ".".join(str(part) for part in loc)


def validation_problems(
    exc: ValidationError, key: Callable[[tuple[int | str, ...]], str] = key_path
) -> str:
    """Every problem of a pydantic validation error, each named by ``key``, in one line."""
    return "; ".join(f"{key(tuple(err['loc']))}: {err['msg']}" for err in exc.errors())
