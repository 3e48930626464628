"""The command-line interface and the deployment files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from dohawatch.cli import _parser
from dohawatch.shared.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).parents[2]


def test_classify_writes_one_line_per_input_in_order() -> None:
    """`dohawatch classify -` answers each JSON line, in order, with the tags and evidence."""
    lines = [
        {"id": "a", "title": "Qatar Airways orders Boeing jets", "summary": "In Doha."},
        {
            "id": "b",
            "title": "Israel recalls negotiating team from Doha",
            "summary": "The Gaza ceasefire and hostage talks were paused.",
        },
    ]
    done = subprocess.run(
        [sys.executable, "-m", "dohawatch", "classify", "-"],
        input="\n".join(json.dumps(x) for x in lines),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = [json.loads(x) for x in done.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b"]
    assert out[0]["relevant"] is False
    assert out[0]["events"] == []
    assert out[1]["relevant"] is True
    assert "delegation_withdrawn" in out[1]["events"]
    assert out[1]["evidence"]["delegation_withdrawn"][0]["field"] == "title"
    assert {"id", "relevant", "relevance", "events", "entities", "evidence"} <= out[1].keys()


def test_classify_reports_a_bad_line_clearly() -> None:
    """A line that is not a JSON object is named by number, exit status 2."""
    done = subprocess.run(
        [sys.executable, "-m", "dohawatch", "classify", "-"],
        input='{"id": "a", "title": "x"}\n[1, 2]\n',
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "line 2" in done.stderr


def test_compose_services_run_real_commands_with_real_settings() -> None:
    """docker-compose.yml parses, each command exists, each DOHAWATCH_ variable is a setting."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    services = {n: s for n, s in compose["services"].items() if s.get("build")}
    assert set(services) == {"fetcher", "classifier", "notifier"}
    for name, service in services.items():
        assert service["command"][0] in commands, name
        for variable in service.get("environment", {}):
            if variable.startswith(ENV_PREFIX):
                assert variable in known, f"{name}: {variable} is not a setting"
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert "KAFKA_PROCESS_ROLES" in compose["services"]["kafka"]["environment"]
