"""What operators see: a real Prometheus scraping the running pipeline answers every
dashboard query, and a demo's logs never contain a configured secret."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from dohawatch.demo.feeds import ReplayServer
from dohawatch.shared.config_file import FeedConfig
from dohawatch.shared.settings import Settings
from tests.factories import until

from ..unit.test_monitoring import DASHBOARD, PROMETHEUS
from .conftest import configure, free_port, running
from .servers import Mailbox, SlackServer

pytestmark = pytest.mark.integration

# Panels that must show data once the replay has gone through the pipeline.
CORE_PANELS = {
    "Feed polls by outcome",
    "Seconds since last successful poll",
    "Items per second by stage",
    "Relevant items",
    "Events by type",
    "Alert revisions by severity",
    "Deliveries by route and outcome",
    "Delivery latency p95 by route",
    "Pipeline latency, fetch to delivery",
    "Consumer lag",
    "Messages consumed and produced",
    "Running versions",
}


def grafana_to_promql(expr: str) -> str:
    """Grafana's variables as Grafana would expand them for 'All' on a 1 s scrape."""
    return (
        expr.replace("$__rate_interval", "10s")
        .replace('"$instance"', '".*"')
        .replace('"$feed"', '".*"')
    )


async def start_prometheus(
    tmp: Path, ports: dict[str, int]
) -> tuple[asyncio.subprocess.Process, str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: `make tools` installs it from Debian's packages")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(PROMETHEUS / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": f"dohawatch-{name}",
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            }
            for name, port in ports.items()
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


async def test_every_dashboard_query_runs_on_prometheus_scraping_the_pipeline(
    settings: Settings, feed_server: ReplayServer, slack: SlackServer, tmp_path: Path
) -> None:
    """Every panel's query runs without error; the core panels return data; the
    rules load; every service is scraped with its /readyz green."""
    ports = {name: free_port() for name in ("fetcher", "classifier", "notifier")}
    settings = configure(
        settings,
        fetcher_http_port=ports["fetcher"],
        classifier_http_port=ports["classifier"],
        notifier_http_port=ports["notifier"],
        slack_webhook_url=f"{slack.url}/services/T0/B0/x",
    )
    feeds = [
        FeedConfig(url=feed_server.url(s), name=o["name"]) for s, o in feed_server.outlets.items()
    ]
    prometheus, api = await start_prometheus(tmp_path, ports)
    dashboard = json.loads(DASHBOARD.read_text())
    try:
        async with running(settings, feeds, routes=None), httpx.AsyncClient(base_url=api) as client:

            async def series(query: str) -> list[dict[str, object]]:
                answer = (await client.get("/api/v1/query", params={"query": query})).json()
                assert answer["status"] == "success", (query, answer)
                return answer["data"]["result"]  # type: ignore[no-any-return]

            await until(lambda: len(slack.accepted()) >= 3, 60)
            for _ in range(300):  # until Prometheus has scraped the deliveries twice
                try:
                    if await series("count_over_time(dohawatch_deliveries_total[10s]) >= 2"):
                        break
                except httpx.TransportError:
                    pass  # Prometheus is still starting
                await asyncio.sleep(0.1)
            for name in ports:
                assert await series(f'up{{job="dohawatch-{name}"}} == 1'), name
                ready = await client.get(f"http://127.0.0.1:{ports[name]}/readyz")
                assert ready.status_code == 200
            empty = []
            for panel in dashboard["panels"]:
                for target in panel.get("targets", ()):
                    result = await series(grafana_to_promql(target["expr"]))
                    if not result and panel["title"] in CORE_PANELS:
                        empty.append(f"{panel['title']}: {target['expr']}")
            for variable in dashboard["templating"]["list"]:
                if variable["type"] != "query":
                    continue
                metric, label = re.fullmatch(
                    r"label_values\((\w+), (\w+)\)", variable["definition"]
                ).groups()  # type: ignore[union-attr]
                values = (
                    await client.get(f"/api/v1/label/{label}/values", params={"match[]": metric})
                ).json()
                assert values["data"], variable["name"]
            rules = (await client.get("/api/v1/rules")).json()["data"]["groups"]
    finally:
        prometheus.terminate()
        await prometheus.wait()
    assert not empty, empty
    assert len(rules[0]["rules"]) == len(
        yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"][0]["rules"]
    )


async def test_a_demo_run_logs_no_configured_secret(
    slack: SlackServer, mailbox: Mailbox, tmp_path: Path
) -> None:
    """With secrets in the environment, some named by a route of the configuration
    file, and debug logging, neither stdout nor stderr shows one."""
    secrets = {
        "DOHAWATCH_SLACK_WEBHOOK_URL": f"{slack.url}/services/T0/B0/s3cr3t-webhook-path",
        "DOHAWATCH_SMTP_PASSWORD": "s3cr3t-smtp-password",
        "DOHAWATCH_WEBHOOK_URL": f"{slack.url}/hooks/s3cr3t-hook",
        "DOHAWATCH_WEBHOOK_SECRET": "s3cr3t-hmac-key",
        "DESK_HOOK_URL": f"{slack.url}/hooks/s3cr3t-desk-path",
        "DESK_HOOK_KEY": "s3cr3t-desk-hmac-key",
    }
    config = tmp_path / "dohawatch.yaml"
    config.write_text(
        "routes:\n  - {name: desk, sink: webhook,"
        " url_env: DESK_HOOK_URL, secret_env: DESK_HOOK_KEY}\n"
    )
    env = {
        **os.environ,
        **secrets,
        "DOHAWATCH_CONFIG_FILE": str(config),
        "DOHAWATCH_SMTP_HOST": "127.0.0.1",
        "DOHAWATCH_SMTP_PORT": str(mailbox.port),
        "DOHAWATCH_SMTP_TO": "desk@news.example",
        "DOHAWATCH_SMTP_STARTTLS": "false",
        "DOHAWATCH_LOG_LEVEL": "DEBUG",
        "DOHAWATCH_LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dohawatch",
        "demo",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 110)
    text = out.decode() + err.decode()
    assert process.returncode == 0, text[-2000:]
    assert "deliveries:" in text
    assert slack.accepted(), "the webhook secrets were used"
    assert slack.accepted("/hooks/s3cr3t-desk-path"), "the file's route delivered"
    assert mailbox.mails, "the mail route was used"
    assert '"event": "delivered"' in text, "the deliveries were logged"
    for name, value in secrets.items():
        assert value not in text, f"{name} leaked into the logs"
