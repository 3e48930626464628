"""One exception tree for dohawatch.

Library errors are translated into these at the edge that calls the library
(``raise ... from exc``). ``retriable`` tells a caller whether trying the same
thing again later can succeed.
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "ConfigError",
    "DecodeError",
    "DohawatchError",
    "FeedError",
    "PackError",
    "SinkError",
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
