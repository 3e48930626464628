"""Settings: one typed table from ``DOHAWATCH_*`` environment variables (the
YAML file for feeds, the topic pack and routes is :mod:`.config_file`).

Read once in the command-line entry point and passed down; no module imports a
global settings object. Secrets are ``SecretStr`` and only ever come from the
environment, never from the YAML file.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError, validation_problems
from .events import Severity

__all__ = [
    "ENV_PREFIX",
    "OptionalPath",
    "OptionalSecret",
    "OptionalText",
    "Settings",
    "load_settings",
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
        "the pipeline's topics, and that its consumer group still lists it, and each "
        "notifier that no other replica has claimed its partitions; also the bound on "
        "each broker check.",
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
