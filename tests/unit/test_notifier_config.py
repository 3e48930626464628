"""Routes from settings and the configuration file, and the errors that name what is missing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dohawatch.notifier.config import make_sink, route_configs
from dohawatch.notifier.sinks import EmailSink, SlackWebhookSink
from dohawatch.shared.errors import ConfigError
from dohawatch.shared.settings import FileConfig, RouteConfig, load_file_config, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_environment_alone_makes_the_default_routes() -> None:
    """Slack webhook and SMTP variables add the `slack` and `email` routes, nothing else."""
    settings = load_settings(
        slack_webhook_url="https://hooks.slack.com/services/T/B/x",
        smtp_host="smtp.example.org",
        smtp_to="a@example.org, b@example.org",
    )
    assert [r.name for r in route_configs(settings, FileConfig())] == ["slack", "email"]
    assert settings.smtp_recipients == ("a@example.org", "b@example.org")
    assert route_configs(load_settings(), FileConfig()) == []


async def test_the_example_configuration_builds_its_sinks(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/feeds.yaml loads, and its routes get their sinks once their variables are set."""
    config = load_file_config(ROOT / "deploy/feeds.yaml")
    settings = load_settings(smtp_host="smtp.example.org")
    async with httpx.AsyncClient() as client:
        with pytest.raises(ConfigError, match="DOHAWATCH_SLACK_DESK_WEBHOOK_URL is not set"):
            make_sink(config.routes[0], settings, client)
        monkeypatch.setenv("DOHAWATCH_SLACK_DESK_WEBHOOK_URL", "https://hooks.slack.com/x")
        sinks = [make_sink(r, settings, client) for r in route_configs(settings, config)]
    assert [type(s) for s in sinks] == [SlackWebhookSink, EmailSink]
    assert config.alerts.severities["public_pressure"] == "off"


async def test_an_email_route_without_a_server_is_a_config_error() -> None:
    """An email route with no SMTP host says which variable to set."""
    route = RouteConfig(name="mail", sink="email", to=("a@example.org",))
    async with httpx.AsyncClient() as client:
        with pytest.raises(ConfigError, match="DOHAWATCH_SMTP_HOST"):
            make_sink(route, load_settings(), client)


def test_route_names_must_be_unique(tmp_path: Path) -> None:
    """Two routes with one name are refused at load, naming the duplicate."""
    path = tmp_path / "c.yaml"
    path.write_text("routes:\n  - {name: a, sink: console}\n  - {name: a, sink: console}\n")
    with pytest.raises(ConfigError, match="route names must be unique: a"):
        load_file_config(path)
