"""The AsyncAPI document downstream teams build on: valid to the official parser,
true to the topics the services use, and strict about versions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dohawatch.schemas import CONTRACTS, render_asyncapi, render_schemas
from dohawatch.shared.codec import CE_TYPES
from dohawatch.shared.kafka import Topics

ROOT = Path(__file__).resolve().parents[2]
PARSER = ROOT / ".cache" / "npm" / "node_modules"
VALIDATE = ROOT / "tests" / "asyncapi" / "validate.mjs"


def validate(path: Path) -> tuple[int, list[dict[str, object]]]:
    """Exit code and diagnostics of the official parser on ``path``."""
    node = shutil.which("node")
    assert node, "node is installed with the parser (make asyncapi-parser)"
    run = subprocess.run(  # noqa: S603 - node and a script of this repository
        [node, str(VALIDATE), str(path)],
        capture_output=True,
        text=True,
        env={"NODE_PATH": str(PARSER), "PATH": str(Path(node).parent)},
        timeout=120,
        check=False,
    )
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines() if line]


@pytest.mark.skipif(
    not (PARSER / "@asyncapi" / "parser").exists(),
    reason="the AsyncAPI parser is installed by `make test` (make asyncapi-parser)",
)
def test_the_official_parser_accepts_the_document_and_refuses_a_broken_one(
    tmp_path: Path,
) -> None:
    """schemas/asyncapi.yaml parses with no error; the same document with a
    message's payload pointing nowhere is refused, so the check is real."""
    code, diagnostics = validate(ROOT / "schemas" / "asyncapi.yaml")
    assert code == 0, diagnostics
    assert not [d for d in diagnostics if d["severity"] == 0]
    broken = render_asyncapi().replace(
        "$ref: '#/components/schemas/Alert'", "$ref: '#/components/schemas/NoSuchSchema'", 1
    )
    (tmp_path / "broken.yaml").write_text(broken)
    code, diagnostics = validate(tmp_path / "broken.yaml")
    assert code == 1
    assert any(d["severity"] == 0 for d in diagnostics)


def test_the_document_names_the_topics_keys_and_types_the_services_use() -> None:
    """Every topic the services write is a channel at its address under the
    prefix parameter, with the CloudEvents type of its model, and its payload is
    the model's own schema."""
    document = yaml.safe_load(render_asyncapi())
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == set(Topics.with_prefix("{prefix}").all())
    components = document["components"]
    for model, _topic in CONTRACTS.values():
        message = components["messages"][model.__name__]
        headers = components["schemas"][message["headers"]["$ref"].rpartition("/")[2]]
        assert headers["properties"]["ce_type"]["const"] == CE_TYPES[model]
        payload = components["schemas"][message["payload"]["$ref"].rpartition("/")[2]]
        assert payload["properties"].keys() == model.model_fields.keys()
        assert message["bindings"]["kafka"]["key"]["type"] == "string"


def test_every_published_schema_requires_its_version() -> None:
    """Consumers are told to refuse versions they do not know, so no schema lets
    a body leave schema_version out."""
    for name, text in render_schemas().items():
        if name.endswith(".schema.json"):
            assert "schema_version" in json.loads(text)["required"], name
    document = yaml.safe_load(render_asyncapi())
    for model, _topic in CONTRACTS.values():
        assert "schema_version" in document["components"]["schemas"][model.__name__]["required"]
