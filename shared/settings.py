"""Settings: one typed table from ``DOHAWATCH_*`` environment variables, plus a
YAML file for feeds, the topic pack and alert routes.

Read once in the command-line entry point and passed down; no module imports a
global settings object. Secrets are ``SecretStr`` and only ever come from the
environment, never from the YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

__all__ = ["FeedConfig", "FileConfig", "Settings", "load_file_config", "load_settings"]

ENV_PREFIX = "DOHAWATCH_"


class Settings(BaseSettings):
    """Every environment setting, with its default. Names are the variables
    without the ``DOHAWATCH_`` prefix, upper-cased."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Kafka
    kafka_bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port]; unset starts the embedded broker."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_client_id: str = "dohawatch"
    kafka_idempotence: bool = Field(
        True,
        description="Idempotent producer; forced off on the embedded broker, which refuses it.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        50, ge=1, le=10_000, description="Latency floor of every stage (shared/DESIGN.md)."
    )
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000)
    kafka_rebalance_timeout_ms: int = Field(
        10_000, ge=500, description="How long a rebalance may wait for members to rejoin."
    )
    topic_prefix: str = Field("dohawatch.", pattern=r"^[A-Za-z0-9._-]*$")
    topic_partitions: int = Field(6, ge=1, le=1000)
    topic_replication_factor: int = Field(1, ge=1, le=10)

    # Files and state
    config_file: Path | None = Field(None, description="YAML file with feeds, pack and routes.")
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
    fetch_timeout_seconds: float = Field(20.0, gt=0)
    fetch_max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    fetch_contact_url: str = "https://github.com/dohawatch/dohawatch"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

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
        problems = "; ".join(
            f"{ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(problems) from exc


class FeedConfig(BaseModel):
    """One feed to poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(pattern=r"^https?://")
    name: str = Field(
        min_length=1, pattern=r"^[\w .&'()-]+$", description="Also the metrics label."
    )
    interval_seconds: float | None = Field(None, gt=0)
    tags: tuple[str, ...] = ()


class FileConfig(BaseModel):
    """The YAML configuration file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feeds: tuple[FeedConfig, ...] = ()
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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
