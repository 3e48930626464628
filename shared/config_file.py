"""The YAML configuration file's schema: feeds, routes, alert rules and the pack.

Secrets never appear in the file: a route names the environment variable that
holds its own (``url_env``, ``secret_env``), read by :func:`route_secrets`. The
environment's settings are in :mod:`.settings`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import ConfigError, validation_problems
from .events import Severity

__all__ = [
    "AlertConfig",
    "FeedConfig",
    "FileConfig",
    "QuietHours",
    "RouteConfig",
    "load_file_config",
    "route_secrets",
]


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
    sink: Literal["slack", "slack-bot", "email", "webhook", "apprise", "console"]
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
    url_env: str | None = Field(
        None, description="slack, webhook, apprise: variable holding the URL."
    )
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
