"""Prometheus rules and the Grafana dashboard agree with the metrics the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from dohawatch.classifier.engine import Classifier
from dohawatch.classifier.pack import load_pack
from dohawatch.classifier.service import ClassifyHandler
from dohawatch.fetcher.service import FetcherMetrics
from dohawatch.notifier.delivery import DeliveryMetrics
from dohawatch.shared.metrics import BrokerMetrics, PipelineMetrics, build_info

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy/prometheus"
DASHBOARD = ROOT / "deploy/grafana/dashboards/dohawatch.json"
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
    "gauge": ("",),
}


def exported_names() -> set[str]:
    """Every series name the three services can export."""
    registry = CollectorRegistry()
    PipelineMetrics(registry)
    FetcherMetrics(registry)
    DeliveryMetrics(registry)
    ClassifyHandler(Classifier(load_pack("doha-talks")), "t", registry)
    BrokerMetrics(registry)
    build_info(registry, "test")
    return {m.name + s for m in registry.collect() for s in SUFFIXES[m.type]}


def dashboard_queries() -> list[str]:
    """Every PromQL expression in the dashboard, panels and template variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make tools` installs Prometheus from Debian's packages")
    return subprocess.run(  # noqa: S603 - fixed arguments, our own files
        [binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
)
def test_promtool_accepts_the_config_and_the_rules_pass_their_tests(args: tuple[str, ...]) -> None:
    """promtool validates the scrape config and rules, and each alert's unit tests pass."""
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_a_runbook_section() -> None:
    """No alert rule goes untested or without its runbook."""
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    tests = (PROMETHEUS / "alerts_test.yml").read_text()
    runbook = (PROMETHEUS / "RUNBOOK.md").read_text()
    for rule in rules:
        assert f"alertname: {rule['alert']}" in tests
        assert f"## {rule['alert']}\n" in runbook
        assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())


@pytest.mark.parametrize("source", ["alerts.yml", "dashboard"])
def test_rules_and_dashboard_name_only_metrics_the_code_exports(source: str) -> None:
    """A metric renamed in code but not in the rules or the dashboard fails here."""
    if source == "dashboard":
        text = "\n".join(dashboard_queries())
    else:
        text = (PROMETHEUS / source).read_text()
    used = set(re.findall(r"\bdohawatch_[a-z_]+\b", text))
    assert used, "the file names no dohawatch metric"
    assert used <= exported_names(), sorted(used - exported_names())


def test_dashboard_has_the_panels_operators_asked_for() -> None:
    """Fetch health, throughput, alerts, deliveries, lag, latency and dead letters, with
    instance and feed variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for words in (
        "Feed polls by outcome",
        "Failing feeds",
        "Items per second by stage",
        "Events by type",
        "Alert revisions by severity",
        "Deliveries by route and outcome",
        "Consumer lag",
        "Pipeline latency",
        "Dead letters",
    ):
        assert words in titles
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"instance", "feed"} <= variables
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
