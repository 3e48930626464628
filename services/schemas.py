"""The event contracts for the people downstream, generated from the models in
shared/events.py: a JSON Schema per event, and an AsyncAPI 3.0 document of every
topic (names with the prefix as a parameter, keys, CloudEvents headers, payloads
by reference to the same schemas, the dead-letter headers)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import BaseModel

from dohawatch.shared.codec import CE_TYPES
from dohawatch.shared.events import Alert, ClassifiedItem, NewsItem

__all__ = ["CONTRACTS", "render_asyncapi", "render_schemas", "write_schemas"]

# file name → (model, topic without prefix)
CONTRACTS: dict[str, tuple[type[BaseModel], str]] = {
    "news.item": (NewsItem, "news.raw"),
    "news.classified": (ClassifiedItem, "news.classified"),
    "alert": (Alert, "alerts"),
}


def render_schemas() -> dict[str, str]:
    """File name → text of every generated file (the JSON Schemas and
    ``asyncapi.yaml``), deterministic so that drift shows as a diff."""
    out = {"asyncapi.yaml": render_asyncapi()}
    for name, (model, topic) in CONTRACTS.items():
        schema = model.model_json_schema(mode="serialization")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://dohawatch.example/schemas/{name}.schema.json",
            "x-kafka-topic": f"<prefix>{topic}",
            "x-cloudevents-type": CE_TYPES[model],
            **schema,
        }
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


# --- AsyncAPI 3.0 ---------------------------------------------------------------

ASYNCAPI_VERSION = "3.0.0"
_CE_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")
# Per topic: channel id, what its key is, and its message's summary.
_CHANNELS: dict[str, tuple[str, str]] = {
    "news.raw": ("newsRaw", "the item's `item_id`"),
    "news.classified": ("newsClassified", "the item's `story_key`: one story, one partition"),
    "alerts": ("alerts", "the alert's `story_key`"),
}
_DEADLETTER_HEADERS = {
    "dlq_reason": "Why the message was set aside: undecodable, invalid, too-large...",
    "dlq_detail": "The error, at most 500 characters.",
    "dlq_service": "The service that set it aside.",
    "dlq_topic": "The topic it was read from.",
    "dlq_partition": "Its partition there.",
    "dlq_offset": "Its offset there.",
    "dlq_size": "The original value's size in bytes.",
    "dlq_truncated": "`true` when the value was cut to 64 KiB.",
}


def _header_schema(
    properties: dict[str, dict[str, object]], required: list[str]
) -> dict[str, object]:
    return {"type": "object", "properties": properties, "required": required}


def _ce_headers(model: type[BaseModel]) -> dict[str, object]:
    """The CloudEvents 1.0 attributes a message of ``model`` carries as Kafka headers."""
    return _header_schema(
        {
            "ce_specversion": {"type": "string", "const": "1.0"},
            "ce_id": {"type": "string", "description": "The event's id; a replay keeps it."},
            "ce_source": {"type": "string", "description": "The service that produced it."},
            "ce_type": {"type": "string", "const": CE_TYPES[model]},
            "ce_time": {"type": "string", "format": "date-time"},
            "content-type": {"type": "string", "const": "application/json"},
        },
        list(_CE_HEADERS),
    )


def render_asyncapi() -> str:
    """The AsyncAPI 3.0 document of every topic, from the same models as the JSON
    Schemas: YAML, deterministic so that drift shows as a diff."""
    schemas: dict[str, object] = {}
    messages: dict[str, object] = {}
    channels: dict[str, object] = {}
    operations: dict[str, object] = {}
    for _name, (model, topic) in CONTRACTS.items():
        channel, key = _CHANNELS[topic]
        title = model.__name__
        schema = model.model_json_schema(
            mode="serialization", ref_template="#/components/schemas/{model}"
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[title] = schema
        schemas[f"{title}Headers"] = _ce_headers(model)
        messages[title] = {
            "name": CE_TYPES[model],
            "title": title,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {"$ref": f"#/components/schemas/{title}Headers"},
            "payload": {"$ref": f"#/components/schemas/{title}"},
            "bindings": {
                "kafka": {"key": {"type": "string", "description": key}, "bindingVersion": "0.5.0"}
            },
        }
        channels[channel] = {
            "address": "{prefix}" + topic,
            "parameters": {"prefix": {"$ref": "#/components/parameters/prefix"}},
            "messages": {title: {"$ref": f"#/components/messages/{title}"}},
        }
        operations[f"send{title}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{title}"}],
        }
    schemas["DeadLetterHeaders"] = _header_schema(
        {
            name: {"type": "string", "description": text}
            for name, text in _DEADLETTER_HEADERS.items()
        },
        [
            "dlq_reason",
            "dlq_detail",
            "dlq_service",
            "dlq_topic",
            "dlq_partition",
            "dlq_offset",
            "dlq_size",
        ],
    )
    messages["DeadLetter"] = {
        "name": "dohawatch.deadletter",
        "title": "DeadLetter",
        "summary": "A message a service could not use, as it was read (at most 64 KiB), "
        "with its original headers and the reason.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "The original value's bytes, or null."},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original message's key."},
                "bindingVersion": "0.5.0",
            }
        },
    }
    channels["deadletter"] = {
        "address": "{prefix}deadletter",
        "parameters": {"prefix": {"$ref": "#/components/parameters/prefix"}},
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    operations["sendDeadLetter"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/deadletter"},
        "messages": [{"$ref": "#/channels/deadletter/messages/DeadLetter"}],
    }
    document = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "dohawatch",
            "version": "1",
            "description": "News items, their tags and the alerts raised on them, as "
            "dohawatch writes them to Kafka. Bodies are JSON; CloudEvents 1.0 "
            "attributes travel as Kafka headers. Every body carries `schema_version`: "
            "refuse a version you do not know.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": messages,
            "parameters": {
                "prefix": {
                    "description": "DOHAWATCH_TOPIC_PREFIX of the deployment.",
                    "default": "dohawatch.",
                    "examples": ["dohawatch."],
                }
            },
        },
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
