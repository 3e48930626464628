"""Routes from settings and the configuration file, and the errors that name what is missing."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from dohawatch.cli import _secrets
from dohawatch.notifier.sinks import EmailSink, SlackWebhookSink, WebhookSink
from dohawatch.notifier.wiring import make_sink, route_configs
from dohawatch.shared.config_file import FileConfig, RouteConfig, load_file_config, route_secrets
from dohawatch.shared.errors import ConfigError
from dohawatch.shared.logs import configure_logging
from dohawatch.shared.settings import ENV_PREFIX, Settings, load_settings

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


async def test_route_secrets_are_read_once_and_kept_out_of_the_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret a route of the file names (url_env, secret_env) is read as a
    SecretStr, builds the sink, and is redacted from every log line, as the
    settings' own secrets are; a value that is no URL is refused without being quoted."""
    config = tmp_path / "c.yaml"
    config.write_text(
        "routes:\n  - {name: desk, sink: webhook, url_env: DESK_URL, secret_env: DESK_KEY}\n"
    )
    monkeypatch.setenv("DOHAWATCH_CONFIG_FILE", str(config))
    monkeypatch.setenv("DESK_URL", "https://hooks.example/s3cr3t-desk-path")
    monkeypatch.setenv("DESK_KEY", "s3cr3t-desk-key")
    settings = load_settings()
    route = load_file_config(config).routes[0]
    secrets = route_secrets([route])
    assert set(secrets) == {"DESK_URL", "DESK_KEY"}
    assert "s3cr3t" not in repr(secrets)
    async with httpx.AsyncClient() as client:
        assert isinstance(make_sink(route, settings, client, secrets), WebhookSink)
        with pytest.raises(ConfigError, match="not an http") as refused:
            make_sink(route, settings, client, {**secrets, "DESK_URL": SecretStr("s3cr3t-x")})
    assert "s3cr3t" not in str(refused.value)

    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json", _secrets(settings), stream=stream)
        logging.getLogger("dohawatch.test").warning(
            "posting to https://hooks.example/s3cr3t-desk-path with s3cr3t-desk-key"
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "posting to" in stream.getvalue()
    assert "s3cr3t" not in stream.getvalue()


def test_every_optional_setting_reads_a_blank_variable_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compose passes `${VAR:-}` as an empty string: for every setting that may be
    unset, a blank variable leaves it unset, whatever its type."""
    optional = [
        name
        for name, field in Settings.model_fields.items()
        if not field.is_required() and field.default is None
    ]
    assert len(optional) >= 15
    for name in optional:
        monkeypatch.setenv(ENV_PREFIX + name.upper(), "  ")
    settings = load_settings()
    assert {name: getattr(settings, name) for name in optional} == dict.fromkeys(optional)


async def test_an_apprise_route_refuses_a_url_apprise_does_not_know_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An Apprise URL of an unknown scheme is a configuration error naming the
    route and the scheme, never the URL's secret parts; a known one builds."""
    route = RouteConfig(name="desk", sink="apprise", url_env="DESK_APPRISE_URL")
    async with httpx.AsyncClient() as client:
        with pytest.raises(ConfigError, match="DESK_APPRISE_URL is not set"):
            make_sink(route, load_settings(), client)
        monkeypatch.setenv("DESK_APPRISE_URL", "nosuchscheme://s3cr3t-token@chat.example/room")
        with pytest.raises(ConfigError, match=r"routes\.desk: .*'nosuchscheme'") as refused:
            make_sink(route, load_settings(), client)
        assert "s3cr3t" not in str(refused.value)
        monkeypatch.setenv("DESK_APPRISE_URL", "ntfy://s3cr3t-token@ntfy.example/desk")
        assert make_sink(route, load_settings(), client).kind == "apprise"
