"""Routes from settings: the default ones the environment implies, then the
configuration file's, each with the sink it names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import assert_never

import httpx
from pydantic import SecretStr

from dohawatch.shared.config_file import FileConfig, RouteConfig, route_secrets
from dohawatch.shared.errors import ConfigError
from dohawatch.shared.settings import Settings

from .sinks import (
    AppriseSink,
    ConsoleSink,
    EmailSink,
    Sink,
    SlackBotSink,
    SlackWebhookSink,
    WebhookSink,
)

__all__ = ["Route", "default_routes", "make_sink", "route_configs"]


@dataclass(frozen=True, slots=True)
class Route:
    """A route's configuration and its sink, ready to deliver."""

    config: RouteConfig
    sink: Sink

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def min_interval(self) -> float:
        """Seconds between two sends; Slack allows about one message per second per
        channel (https://api.slack.com/apis/rate-limits)."""
        if self.config.min_interval_seconds is not None:
            return self.config.min_interval_seconds
        return 1.0 if self.sink.kind.startswith("slack") else 0.0


def default_routes(settings: Settings) -> list[RouteConfig]:
    """The routes a container user gets from ``DOHAWATCH_SLACK_*``, ``DOHAWATCH_SMTP_*``
    and ``DOHAWATCH_WEBHOOK_*`` alone."""
    floor = settings.notify_min_severity
    routes = []
    if settings.slack_webhook_url:
        routes.append(RouteConfig(name="slack", sink="slack", min_severity=floor))
    if settings.slack_bot_token and settings.slack_channel:
        routes.append(
            RouteConfig(
                name="slack-bot",
                sink="slack-bot",
                min_severity=floor,
                channel=settings.slack_channel,
            )
        )
    if settings.smtp_host and settings.smtp_recipients:
        routes.append(RouteConfig(name="email", sink="email", min_severity=floor))
    if settings.webhook_url:
        routes.append(RouteConfig(name="webhook", sink="webhook", min_severity=floor))
    return routes


def route_configs(settings: Settings, config: FileConfig) -> list[RouteConfig]:
    """Default routes, then the file's; a file route replaces a default of the same name."""
    mine = {r.name for r in config.routes}
    return [r for r in default_routes(settings) if r.name not in mine] + list(config.routes)


def _reveal(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _secret(
    route: RouteConfig,
    secrets: Mapping[str, SecretStr],
    variable: str | None,
    fallback: str | None,
    what: str,
) -> str:
    if variable:
        if variable not in secrets:
            raise ConfigError(f"routes.{route.name}: {what} variable {variable} is not set")
        return secrets[variable].get_secret_value()
    if not fallback:
        raise ConfigError(f"routes.{route.name}: no {what} is set")
    return fallback


def _url(route: RouteConfig, url: str, what: str) -> str:
    """``url`` if it is an http(s) URL; the error never quotes it (it is a secret)."""
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"routes.{route.name}: the {what} is not an http(s) URL")
    return url


def make_sink(
    route: RouteConfig,
    settings: Settings,
    client: httpx.AsyncClient,
    secrets: Mapping[str, SecretStr] | None = None,
) -> Sink:
    """The sink ``route`` names, with its connection details; the secrets it names
    come from ``secrets`` (:func:`~dohawatch.shared.settings.route_secrets`, read
    from the environment when not given).

    Raises:
        ConfigError: a setting the sink needs is missing; the message names it.
    """
    secrets = route_secrets([route]) if secrets is None else secrets
    match route.sink:
        case "console":
            return ConsoleSink()
        case "slack":
            what = "webhook URL (DOHAWATCH_SLACK_WEBHOOK_URL or url_env)"
            url = _secret(route, secrets, route.url_env, _reveal(settings.slack_webhook_url), what)
            return SlackWebhookSink(client, _url(route, url, what))
        case "slack-bot":
            token = _reveal(settings.slack_bot_token)
            channel = route.channel or settings.slack_channel
            if not channel:
                raise ConfigError(f"routes.{route.name}: channel is required for slack-bot")
            return SlackBotSink(
                client,
                settings.slack_api_url,
                _secret(route, secrets, None, token, "bot token (DOHAWATCH_SLACK_BOT_TOKEN)"),
                channel,
                settings.slack_thread_mode,
            )
        case "webhook":
            what = "URL (DOHAWATCH_WEBHOOK_URL, url or url_env)"
            url = route.url or _secret(
                route, secrets, route.url_env, _reveal(settings.webhook_url), what
            )
            key = _reveal(settings.webhook_secret)
            if route.secret_env or key:
                key = _secret(route, secrets, route.secret_env, key, "HMAC secret (secret_env)")
            return WebhookSink(
                client, route.name, _url(route, url, what), key.encode() if key else None
            )
        case "email":
            return _email_sink(route, settings)
        case "apprise":
            url = _secret(route, secrets, route.url_env, None, "Apprise URL (url_env)")
            try:
                return AppriseSink(url, settings.delivery_timeout_seconds)
            except ConfigError as exc:
                raise ConfigError(f"routes.{route.name}: {exc}") from None
        case _:
            assert_never(route.sink)


def _email_sink(route: RouteConfig, settings: Settings) -> Sink:
    recipients: Sequence[str] = route.to or settings.smtp_recipients
    if not settings.smtp_host or not recipients:
        raise ConfigError(
            f"routes.{route.name}: email needs DOHAWATCH_SMTP_HOST and recipients "
            "(the route's `to` or DOHAWATCH_SMTP_TO)"
        )
    return EmailSink(
        route.name,
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        recipients=recipients,
        username=settings.smtp_username,
        password=_reveal(settings.smtp_password),
        starttls=settings.smtp_starttls,
        tls=settings.smtp_tls,
        timeout=settings.smtp_timeout_seconds,
        ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
    )
