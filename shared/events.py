"""The event contracts: what travels on each Kafka topic.

These models are the single source of truth (docs/kafka.md). JSON Schemas in
``schemas/`` are generated from them with ``make schemas``, and a test fails when
the two drift apart. Every model is frozen and rejects unknown fields; every body
carries ``schema_version`` so consumers can refuse what they do not understand.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "SUMMARY_CHARS",
    "TITLE_CHARS",
    "Alert",
    "AlertSource",
    "ClassifiedItem",
    "Entity",
    "EvidenceSpan",
    "NewsItem",
    "Severity",
    "TaggedEvent",
]

SCHEMA_VERSION = 1

UtcDatetime = Annotated[AwareDatetime, Field(description="An instant in UTC (ISO 8601).")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class Severity(StrEnum):
    """How urgently a reader should look, lowest first."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position from 0 (info) to 4 (critical), for comparisons."""
        return list(Severity).index(self)


class _Contract(BaseModel):
    # Producers write every field, defaults included: the published (serialization)
    # schemas require them all, schema_version first among them.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


TITLE_CHARS = 500
"""The longest title any contract carries; the fetcher cuts longer ones, ending them with "…"."""
SUMMARY_CHARS = 8000
"""The longest summary: a news summary is a paragraph, and with this cap every
message fits the producers' 1 MiB request limit with room to spare."""


class NewsItem(_Contract):
    """One entry of one feed, published once on ``news.raw`` keyed by ``item_id``."""

    schema_version: Literal[1] = Field(1, description="Version of this contract.")
    item_id: str = Field(description="Stable id: hash of the entry's GUID, else of its link.")
    feed_url: str = Field(description="URL of the feed the item was read from.")
    source: str = Field(description="Outlet name, from the feed's configuration.")
    url: str = Field(description="Link to the item, absolute.")
    title: str = Field(max_length=TITLE_CHARS, description="Headline as plain text.")
    summary: str = Field(
        max_length=SUMMARY_CHARS, description="Summary as plain text, markup stripped."
    )
    published_at: AwareDatetime | None = Field(
        description="When the outlet published it (UTC); null when the feed does not say."
    )
    fetched_at: UtcDatetime = Field(description="When the fetcher read it (UTC).")
    language: str | None = Field(None, description="BCP 47 language tag when known.")
    feed_tags: tuple[str, ...] = Field((), description="Tags of the feed, from configuration.")


class EvidenceSpan(_Contract):
    """The text that made a tag: a character range of the item's title or summary."""

    field: Literal["title", "summary"] = Field(description="Which text the span is in.")
    start: int = Field(ge=0, description="Offset of the first character.")
    end: int = Field(ge=0, description="Offset one past the last character.")
    text: str = Field(description="The characters themselves, for display.")


class TaggedEvent(_Contract):
    """One event type the classifier found in an item, with why."""

    type: str = Field(description="Event type name from the topic pack.")
    confidence: Unit = Field(description="How sure the classifier is, 0..1.")
    evidence: tuple[EvidenceSpan, ...] = Field(description="Spans that triggered the tag.")


class Entity(_Contract):
    """An actor, person, place or figure mentioned in an item."""

    kind: Literal["actor", "person", "place", "figure"] = Field(description="What it is.")
    name: str = Field(description="Canonical name (figures: the figure's kind, e.g. 'ratio').")
    value: float | None = Field(None, description="Figures only: the number, in `unit`.")
    unit: str | None = Field(None, description="Figures only: the unit of `value`.")
    evidence: tuple[EvidenceSpan, ...] = Field(description="Where it was mentioned.")


class ClassifiedItem(_Contract):
    """An item with its tags, on ``news.classified`` keyed by ``story_key``."""

    schema_version: Literal[1] = Field(1, description="Version of this contract.")
    item: NewsItem = Field(description="The item as the fetcher published it.")
    relevant: bool = Field(description="Whether the item is about the monitored topic.")
    relevance: Unit = Field(description="Relevance score, 0..1; `relevant` is score >= threshold.")
    events: tuple[TaggedEvent, ...] = Field(description="Event types found, strongest first.")
    entities: tuple[Entity, ...] = Field(description="Entities and figures found.")
    story_key: str = Field(description="Items about the same development share this key.")
    classifier_version: str = Field(
        description="Topic pack name and version, engine version, and the learned model's digest "
        "when the pack has one (doha-talks@2026.12/engine-4/model-b911da7a8856)."
    )


class AlertSource(_Contract):
    """One item that reported the development."""

    outlet: str = Field(description="Outlet name.")
    url: str = Field(description="Link to the item.")
    title: str = Field(max_length=TITLE_CHARS, description="Its headline.")
    published_at: AwareDatetime | None = Field(description="When it was published, if known.")


class Alert(_Contract):
    """One development, on ``alerts`` keyed by ``story_key``; revised as sources add up."""

    schema_version: Literal[1] = Field(1, description="Version of this contract.")
    alert_id: str = Field(description="Deterministic id of the story's alert; same on replay.")
    story_key: str = Field(description="The story this alert is about.")
    event_type: str = Field(description="The story's event type.")
    severity: Severity = Field(description="How urgent.")
    headline: str = Field(
        max_length=TITLE_CHARS, description="Headline of the first item that raised it."
    )
    summary: str = Field(max_length=SUMMARY_CHARS, description="Summary of that item.")
    sources: tuple[AlertSource, ...] = Field(description="Every corroborating item, first first.")
    first_seen: UtcDatetime = Field(description="When the first item was fetched.")
    updated_at: UtcDatetime = Field(description="When this revision was made.")
    revision: int = Field(ge=1, description="1 for a new alert, then 2, 3... as sources add up.")
    evidence: tuple[EvidenceSpan, ...] = Field(description="Spans that triggered the alert.")
