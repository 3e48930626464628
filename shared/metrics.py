"""Prometheus metrics shared by the three services, on an injected registry.

Names follow the Prometheus conventions: ``dohawatch_`` namespace, base units,
``_total`` for counters, ``_seconds`` for durations. Label values are bounded:
topic names, partition numbers, reasons from a fixed set, feed names from
configuration; never a URL or a title read from the wire.
"""

from __future__ import annotations

from functools import partial
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

__all__ = ["BrokerMetrics", "PipelineMetrics", "build_info", "package_version"]


def package_version() -> str:
    """The installed dohawatch version, or ``unknown`` when running from a bare tree."""
    try:
        return version("dohawatch")
    except PackageNotFoundError:
        return "unknown"


def build_info(registry: CollectorRegistry, service: str) -> None:
    """Register ``dohawatch_build_info`` with the version and service name."""
    Info("dohawatch_build", "Version of the running service.", registry=registry).info(
        {"version": package_version(), "service": service}
    )


class PipelineMetrics:
    """What every consuming service reports about its Kafka loop."""

    def __init__(self, registry: CollectorRegistry) -> None:
        counter = partial(Counter, registry=registry)
        gauge = partial(Gauge, registry=registry)
        histogram = partial(Histogram, registry=registry)
        self.consumed = counter(
            "dohawatch_messages_consumed_total", "Messages read from Kafka.", ["topic"]
        )
        self.produced = counter(
            "dohawatch_messages_produced_total", "Messages acknowledged by Kafka.", ["topic"]
        )
        self.deadletters = counter(
            "dohawatch_deadletters_total",
            "Input messages sent to the dead-letter topic.",
            ["topic", "reason"],
        )
        self.lag = gauge(
            "dohawatch_consumer_lag_messages",
            "High watermark minus consumer position.",
            ["topic", "partition"],
        )
        self.offset_resets = counter(
            "dohawatch_offset_resets_total",
            "Partitions whose consumer position was past the log's end (the broker "
            "lost its data) and were read again from the beginning.",
            ["topic"],
        )
        self.partitions = gauge(
            "dohawatch_consumer_partitions_assigned",
            "Partitions the consumer group assigned to this replica.",
            ["topic"],
        )
        self.rebalances = counter(
            "dohawatch_consumer_rebalances_total",
            "Partitions assigned to or revoked from this replica.",
            ["topic", "change"],
        )
        self.batch_seconds = histogram(
            "dohawatch_batch_duration_seconds",
            "Time from a batch's arrival to its commit.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )


class BrokerMetrics:
    """Whether the broker answers, and how often it was found without our topics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "dohawatch_broker_up",
            "1 when the broker answered the last check within its bound, else 0.",
            registry=registry,
        )
        self.recreated = Counter(
            "dohawatch_broker_topics_recreated_total",
            "Times the broker answered without the pipeline's topics and they were "
            "created again (the broker lost its data).",
            registry=registry,
        )
