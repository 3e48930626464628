"""JSON Schemas of the event contracts, generated from the models in shared/events.py."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from dohawatch.shared.codec import CE_TYPES
from dohawatch.shared.events import Alert, ClassifiedItem, NewsItem

__all__ = ["CONTRACTS", "render_schemas", "write_schemas"]

# file name → (model, topic without prefix)
CONTRACTS: dict[str, tuple[type[BaseModel], str]] = {
    "news.item": (NewsItem, "news.raw"),
    "news.classified": (ClassifiedItem, "news.classified"),
    "alert": (Alert, "alerts"),
}


def render_schemas() -> dict[str, str]:
    """File name → schema text, deterministic so that drift shows as a diff."""
    out = {}
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
