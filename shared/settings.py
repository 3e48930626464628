"""Settings: one typed table from ``DOHAWATCH_*`` environment variables, plus a
YAML file for feeds, the topic pack and alert routes.

Read once in the command-line entry point and passed down; no module imports a
global settings object. Secrets are ``SecretStr`` and only ever come from the
environment, never from the YAML file.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError, validation_problems
from .events import Severity

__all__ = [
    "AlertConfig",
    "FeedConfig",
    "FileConfig",
    "QuietHours",
    "RouteConfig",
    "Settings",
    "load_file_config",
    "load_settings",
    "route_secrets",
]

ENV_PREFIX = "DOHAWATCH_"


def _blank_is_unset(value: object) -> object:
    # docker compose passes `${VAR:-}` as an empty string: that means unset.
    return (value.strip() or None) if isinstance(value, str) else value


# Optional settings: a blank value is no value.
OptionalText = Annotated[str | None, BeforeValidator(_blank_is_unset)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_is_unset)]
OptionalPath = Annotated[Path | None, BeforeValidator(_blank_is_unset)]


class Settings(BaseSettings):
    """Every environment setting, with its default. Names are the variables
    without the ``DOHAWATCH_`` prefix, upper-cased."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Kafka
    kafka_bootstrap_servers: OptionalText = Field(
        None, description="host:port[,host:port]; unset starts the embedded broker."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: OptionalText = None
    kafka_sasl_password: OptionalSecret = None
    kafka_ssl_cafile: OptionalPath = None
    kafka_ssl_certfile: OptionalPath = None
    kafka_ssl_keyfile: OptionalPath = None
    kafka_client_id: str = "dohawatch"
    kafka_idempotence: bool = Field(
        True,
        description="Idempotent producer; forced off on the embedded broker, which refuses it.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        50, ge=1, le=10_000, description="Latency floor of every stage (docs/kafka.md)."
    )
    kafka_max_poll_records: int = Field(
        2000,
        ge=1,
        le=100_000,
        description="Most records a service takes in one batch; one commit per batch.",
    )
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000)
    kafka_check_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="How often each service checks that the broker answers and still has "
        "the pipeline's topics; also the bound on each check.",
    )
    kafka_rebalance_timeout_ms: int = Field(
        10_000, ge=500, description="How long a rebalance may wait for members to rejoin."
    )
    topic_prefix: str = Field("dohawatch.", pattern=r"^[A-Za-z0-9._-]*$")
    topic_partitions: int = Field(6, ge=1, le=1000)
    topic_replication_factor: int = Field(1, ge=1, le=10)

    # Files and state
    config_file: OptionalPath = Field(None, description="YAML file with feeds, pack and routes.")
    state_dir: Path = Field(Path(".dohawatch"), description="Fetcher state and notifier ledger.")

    # Operations endpoints (/metrics, /healthz, /readyz); 0 picks a free port.
    http_host: str = "127.0.0.1"
    fetcher_http_port: int = Field(9101, ge=0, le=65535)
    classifier_http_port: int = Field(9102, ge=0, le=65535)
    notifier_http_port: int = Field(9103, ge=0, le=65535)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Fetcher
    fetch_interval_seconds: float = Field(300.0, gt=0)
    fetch_min_interval_seconds: float = Field(60.0, gt=0)
    fetch_max_interval_seconds: float = Field(3600.0, gt=0)
    fetch_timeout_seconds: float = Field(20.0, gt=0, description="Per connect and read.")
    fetch_total_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="A whole poll, redirects and body included; the wait for a busy "
        "host's turn is not counted.",
    )
    fetch_max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    fetch_max_entries: int = Field(
        500,
        ge=1,
        description="Entries read from one poll, the newest first: a feed listing more "
        "publishes only these, which bounds a poll's time and memory.",
    )
    fetch_contact_url: str = "https://github.com/dohawatch/dohawatch"
    fetch_per_host: int = Field(2, ge=1, le=64, description="Requests in flight per host.")
    fetch_max_in_flight: int = Field(
        16, ge=1, le=256, description="Requests in flight in all (make bench: fewer is faster)."
    )
    fetch_host_min_gap_seconds: float = Field(
        1.0, ge=0, description="Least time between two request starts to one host."
    )
    fetch_allowed_networks: str = Field(
        "",
        description="Comma-separated CIDRs feeds may resolve to besides public addresses, "
        "e.g. 127.0.0.0/8 for a local feed server; private, loopback, link-local and "
        "multicast addresses are refused otherwise.",
    )
    fetch_failing_after: int = Field(
        5, ge=1, description="Failures in a row after which a feed is reported failing."
    )

    # Notifier: the default routes, built from these alone (a container user's setup).
    slack_webhook_url: OptionalSecret = Field(
        None, description="Incoming webhook; set, it adds the route `slack`."
    )
    slack_bot_token: OptionalSecret = Field(
        None, description="Bot token (xoxb-); with slack_channel it adds the route `slack-bot`."
    )
    slack_channel: OptionalText = Field(None, description="Channel id for the bot-token route.")
    slack_api_url: str = Field(
        "https://slack.com/api", pattern=r"^https?://", description="Slack Web API base URL."
    )
    slack_thread_mode: Literal["thread", "update"] = Field(
        "thread", description="Bot mode: later revisions reply in a thread or edit the message."
    )
    smtp_host: OptionalText = Field(None, description="SMTP server; with smtp_to it adds `email`.")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: OptionalText = None
    smtp_password: OptionalSecret = None
    smtp_from: str = "dohawatch <dohawatch@localhost>"
    smtp_to: OptionalText = Field(None, description="Comma-separated recipients.")
    smtp_starttls: bool = Field(True, description="Upgrade with STARTTLS (port 587).")
    smtp_tls: bool = Field(False, description="Implicit TLS from the first byte (port 465).")
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    smtp_ca_file: OptionalPath = Field(
        None, description="CA bundle to verify the SMTP server with, instead of the system's."
    )
    webhook_url: OptionalSecret = Field(
        None, description="Generic HTTPS webhook; set, it adds the route `webhook`."
    )
    webhook_secret: OptionalSecret = Field(None, description="HMAC-SHA256 key for webhooks.")
    notify_min_severity: Severity = Field(
        Severity.INFO, description="Lowest severity the default routes deliver."
    )
    delivery_give_up_after_seconds: float = Field(
        86400.0,
        gt=0,
        description="How long a revision is retried while its sink is unavailable before it "
        "is dead-lettered: an outage delays delivery, it does not drop it.",
    )
    delivery_backoff_seconds: float = Field(2.0, gt=0)
    delivery_backoff_max_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest wait between tries: also the longest a route stays idle after "
        "its sink recovers.",
    )
    delivery_timeout_seconds: float = Field(15.0, gt=0)

    @field_validator("fetch_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for network in filter(None, (n.strip() for n in value.split(","))):
            try:
                ipaddress.ip_network(network)
            except ValueError as exc:
                raise ValueError(f"not a network: {network!r}") from exc
        return value

    @property
    def smtp_recipients(self) -> tuple[str, ...]:
        """``smtp_to`` split on commas."""
        return tuple(a.strip() for a in (self.smtp_to or "").split(",") if a.strip())

    @property
    def embedded_broker(self) -> bool:
        """True when no Kafka is configured and the commands start their own."""
        return self.kafka_bootstrap_servers is None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (``overrides`` win).

    Raises:
        ConfigError: a value is invalid; the message names the variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:

        def variable(loc: tuple[int | str, ...]) -> str:
            return f"{ENV_PREFIX}{str(loc[0]).upper()}"

        raise ConfigError(validation_problems(exc, variable)) from exc


class FeedConfig(BaseModel):
    """One feed to poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(pattern=r"^https?://")
    name: str = Field(
        min_length=1, pattern=r"^[\w .&'()-]+$", description="Also the metrics label."
    )
    interval_seconds: float | None = Field(None, gt=0)
    tags: tuple[str, ...] = ()


class QuietHours(BaseModel):
    """A daily window in which a route holds all but urgent alerts until it ends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time = Field(description="Local time the window opens, e.g. 22:00.")
    end: time = Field(description="Local time it closes; before `start` means the next day.")
    timezone: str = Field("UTC", description="IANA zone name, e.g. Asia/Qatar.")
    breakthrough: Severity = Field(
        Severity.HIGH, description="Alerts this severe or more are delivered at once anyway."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class RouteConfig(BaseModel):
    """A sink plus a filter: which alert revisions go where, and when.

    Secrets (webhook URLs, tokens, the SMTP password) never appear here: a route
    names the environment variable holding its own (``url_env``, ``secret_env``),
    or uses the ``DOHAWATCH_SLACK_*`` / ``DOHAWATCH_SMTP_*`` settings.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Also the metrics label.")
    sink: Literal["slack", "slack-bot", "email", "webhook", "console"]
    event_types: tuple[str, ...] = Field((), description="Only these types; empty means all.")
    min_severity: Severity = Severity.INFO
    keywords: tuple[str, ...] = Field(
        (), description="Any of these (case-insensitive) in a headline or summary; empty: all."
    )
    feed_tags: tuple[str, ...] = Field((), description="Any source's feed has one of these.")
    digest_minutes: int = Field(0, ge=0, le=24 * 60, description="0 delivers each at once.")
    quiet_hours: QuietHours | None = None
    outlet_thresholds: tuple[int, ...] = Field(
        (3, 10), description="A revision is news to readers when its outlet count crosses one."
    )
    min_interval_seconds: float | None = Field(
        None, ge=0, description="Rate limit; default 1 s for Slack (its limit), else 0."
    )
    channel: str | None = Field(None, description="slack-bot: channel id.")
    to: tuple[str, ...] = Field((), description="email: recipients instead of smtp_to.")
    url: str | None = Field(None, pattern=r"^https?://", description="webhook: a URL, no secret.")
    url_env: str | None = Field(None, description="slack, webhook: variable holding the URL.")
    secret_env: str | None = Field(None, description="webhook: variable holding the HMAC key.")

    @property
    def secret_variables(self) -> tuple[str, ...]:
        """The environment variables this route reads its secrets from."""
        return tuple(v for v in (self.url_env, self.secret_env) if v)


def route_secrets(
    routes: Iterable[RouteConfig], environ: Mapping[str, str] = os.environ
) -> dict[str, SecretStr]:
    """The secrets the ``routes`` name (``url_env``, ``secret_env``), read once from
    ``environ`` as ``SecretStr``, keyed by variable; variables unset or empty are
    left out (the sink that needs one says so when it is built)."""
    return {
        name: SecretStr(environ[name])
        for route in routes
        for name in route.secret_variables
        if environ.get(name)
    }


class AlertConfig(BaseModel):
    """Overrides of the topic pack's alert rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severities: dict[str, Severity | Literal["off"]] = Field(
        {}, description="Event type → severity, or `off` to stop it alerting."
    )
    min_relevance: float | None = Field(None, ge=0, le=1)
    story_window_hours: float = Field(
        12.0, gt=0, description="A story ends when no source adds to it for this long."
    )
    escalate_at_outlets: int = Field(
        0, ge=0, description="Raise severity one step at this many outlets; 0 never."
    )


class FileConfig(BaseModel):
    """The YAML configuration file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feeds: tuple[FeedConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    alerts: AlertConfig = AlertConfig()

    @field_validator("routes")
    @classmethod
    def _unique_route_names(cls, routes: tuple[RouteConfig, ...]) -> tuple[RouteConfig, ...]:
        names = [r.name for r in routes]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"route names must be unique: {', '.join(duplicates)}")
        return routes

    topic_pack: str = Field(
        "doha-talks", description="A bundled pack's name or the path of a pack file."
    )


def load_file_config(path: Path | None) -> FileConfig:
    """Load the YAML configuration file; no file means defaults.

    Raises:
        ConfigError: the file is unreadable or invalid; the message names the key.
    """
    if path is None:
        return FileConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return FileConfig.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from exc
