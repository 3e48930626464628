"""The command-line interface and the deployment files."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from dohawatch.cli import _parser
from dohawatch.demo.feeds import load_replay
from dohawatch.shared.config_file import load_file_config
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
    """docker-compose.yml parses, each command exists, each DOHAWATCH_ variable is a
    setting, and every file it mounts is in the repository."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    services = {n: s for n, s in compose["services"].items() if s.get("build")}
    always = {n for n, s in services.items() if not s.get("profiles")}
    assert always == {"fetcher", "classifier", "notifier"}
    assert {n for n, s in compose["services"].items() if "demo" in s.get("profiles", ())} == {
        "replay",
        "mailpit",
    }
    for name, service in services.items():
        assert service["command"][0] in commands, name
        for variable in service.get("environment", {}):
            if variable.startswith(ENV_PREFIX):
                assert variable in known, f"{name}: {variable} is not a setting"
    for name, service in compose["services"].items():
        for volume in service.get("volumes", ()):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert "KAFKA_PROCESS_ROLES" in compose["services"]["kafka"]["environment"]


def test_demo_profile_settings_and_feeds_are_valid() -> None:
    """deploy/demo.env holds settings only, and deploy/demo.yaml polls every replay outlet."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy/demo.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(env) <= known
    config = load_file_config(ROOT / "deploy/demo.yaml")
    outlets, _ = load_replay()
    assert {f.url for f in config.feeds} == {f"http://replay:8080/{o}.xml" for o in outlets}
    assert {f.name for f in config.feeds} == {o["name"] for o in outlets.values()}


def test_kubernetes_manifests_run_real_commands_with_probes_and_settings() -> None:
    """Every workload runs a dohawatch command, probes /healthz and /readyz on its ops
    port, is annotated for scraping, and every variable it is given is a setting."""
    docs = [
        d
        for f in sorted((ROOT / "deploy/kubernetes").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
    ]
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for doc in docs:
        if doc["kind"] in ("ConfigMap", "Secret"):
            for key in {**doc.get("data", {}), **doc.get("stringData", {})}:
                assert key in known or key.endswith(".yaml"), key
    commands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    workloads = {
        d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")
    }
    assert set(workloads) == {"dohawatch-fetcher", "dohawatch-classifier", "dohawatch-notifier"}
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["args"][0] in commands
        port = container["ports"][0]["containerPort"]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"], name
        for variable in container.get("env", ()):
            assert variable["name"] in known, variable["name"]
        assert {
            "name": f"DOHAWATCH_{name.split('-')[1].upper()}_HTTP_PORT",
            "value": str(port),
        } in (container["env"])


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`dohawatch --version` prints the package's version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"dohawatch {version('dohawatch')}"


def test_eval_prints_each_parts_scores_with_its_story_interval(tmp_path: Path) -> None:
    """`dohawatch eval` prints each part's table and its bootstrap interval over
    that part's stories, and with `--wrong none` no item."""
    rows = [
        {
            "id": "a1",
            "story": "a",
            "relevant": True,
            "events": ["delegation_withdrawn"],
            "title": "Israel recalls negotiating team from Doha",
            "summary": "",
        },
        {
            "id": "a2",
            "story": "a",
            "relevant": True,
            "events": ["delegation_withdrawn"],
            "title": "Netanyahu recalls Mossad team from Qatar talks",
            "summary": "",
        },
        {
            "id": "b1",
            "story": "b",
            "relevant": False,
            "events": [],
            "title": "Qatar Airways orders Boeing jets",
            "summary": "In Doha.",
        },
    ]
    corpus = tmp_path / "labels.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "held").write_text("b  # the airline story\n")
    args = ["eval", str(corpus), "--holdout", str(tmp_path / "held"), "--wrong", "none"]
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "dohawatch", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = done.stdout
    for part, items, stories in (
        ("all", 3, "2 stories"),
        ("tuned", 2, "1 story"),
        ("held-out", 1, "1 story"),
    ):
        assert f"== {part}: {items} items" in out
        assert f"90% intervals over 2,000 redraws of its {stories}: " in out
    assert "== wrong" not in out
    assert "Boeing" not in out
