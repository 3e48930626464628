"""Kafka message encoding: JSON bodies with CloudEvents 1.0 attributes in headers.

Binary content mode of the CloudEvents Kafka protocol binding: the body is the
event's JSON, and the context attributes travel as ``ce_*`` headers, so any
consumer can route on ``ce_type`` without parsing the body.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from . import ids
from .errors import DecodeError
from .events import Alert, ClassifiedItem, NewsItem

__all__ = ["CE_TYPES", "Headers", "Outgoing", "decode", "encode", "encode_classified", "header"]

Headers = list[tuple[str, bytes]]
E = TypeVar("E", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready to send: where, key, body and headers."""

    topic: str
    key: bytes | None  # None only where the input it dead-letters had none
    value: bytes | None
    headers: Headers
    partition: int | None = None  # None: the producer's partitioner picks it from the key
    written: Callable[[int], None] | None = None  # told the offset the broker gave it


@dataclass(frozen=True, slots=True)
class _Kind:
    ce_type: str
    source: str
    ce_id: Callable[[BaseModel], str]
    ce_time: Callable[[BaseModel], datetime]
    key: Callable[[BaseModel], str]


def _news(e: BaseModel) -> NewsItem:
    assert isinstance(e, NewsItem)
    return e


def _classified(e: BaseModel) -> ClassifiedItem:
    assert isinstance(e, ClassifiedItem)
    return e


def _alert(e: BaseModel) -> Alert:
    assert isinstance(e, Alert)
    return e


# ce_id is deterministic, so a replay after a crash carries the same id and a
# consumer can drop it (CloudEvents: source + id identify an event).
_KINDS: dict[type[BaseModel], _Kind] = {
    NewsItem: _Kind(
        "dohawatch.news.item",
        "/dohawatch/fetcher",
        lambda e: _news(e).item_id,
        lambda e: _news(e).fetched_at,
        lambda e: _news(e).item_id,
    ),
    ClassifiedItem: _Kind(
        "dohawatch.news.classified",
        "/dohawatch/classifier",
        lambda e: _classified(e).item.item_id,
        lambda e: _classified(e).item.fetched_at,
        lambda e: _classified(e).story_key,
    ),
    Alert: _Kind(
        "dohawatch.alert",
        "/dohawatch/notifier",
        lambda e: ids.revision_id(_alert(e).alert_id, _alert(e).revision),
        lambda e: _alert(e).updated_at,
        lambda e: _alert(e).story_key,
    ),
}
CE_TYPES: dict[type[BaseModel], str] = {model: kind.ce_type for model, kind in _KINDS.items()}


def _headers(kind: _Kind, ce_id: str, ce_time: datetime) -> Headers:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", ce_id.encode()),
        ("ce_source", kind.source.encode()),
        ("ce_type", kind.ce_type.encode()),
        ("ce_time", ce_time.isoformat().encode()),
        ("content-type", b"application/json"),
    ]


def encode(event: BaseModel, topic: str) -> Outgoing:
    """Encode a contract event as a Kafka message for ``topic``.

    Raises:
        KeyError: ``event`` is not one of the contract models.
    """
    kind = _KINDS[type(event)]
    headers = _headers(kind, kind.ce_id(event), kind.ce_time(event))
    return Outgoing(topic, kind.key(event).encode(), event.model_dump_json().encode(), headers)


def encode_classified(item: NewsItem, story_key: str, body: bytes, topic: str) -> Outgoing:
    """The message :func:`encode` makes of a ``ClassifiedItem`` about ``item``, from
    its JSON ``body`` already written (the classifier's hot path skips the model)."""
    headers = _headers(_KINDS[ClassifiedItem], item.item_id, item.fetched_at)
    return Outgoing(topic, story_key.encode(), body, headers)


def header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    """Return the first header called ``name`` as text, or None."""
    for key, value in headers or ():
        if key == name:
            return value.decode("utf-8", "replace")
    return None


def decode(value: bytes | None, headers: Sequence[tuple[str, bytes]] | None, model: type[E]) -> E:
    """Decode a Kafka message body into ``model``, checking its CloudEvents type.

    Raises:
        DecodeError: the type header is missing or wrong, or the body does not
            validate; ``reason`` says which.
    """
    expected = _KINDS[model].ce_type
    got = header(headers, "ce_type")
    if got != expected:
        raise DecodeError("wrong-type", f"ce_type {got!r}, expected {expected!r}")
    if value is None:
        raise DecodeError("empty-body", "message has no value")
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise DecodeError("invalid-body", f"{where}: {first['msg']}") from exc
