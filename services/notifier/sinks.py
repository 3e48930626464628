"""Where alerts go besides the alerts topic: the sinks, and the errors they translate.

Each sink sends one revision (``send``) or a digest (``send_digest``) and turns
every failure of its library into a ``SinkError`` saying whether a retry can
help and how long the server asked us to wait. Retrying, rate limiting and the
ledger belong to ``delivery``; a sink only talks to its server.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol, TextIO

import aiosmtplib
import httpx

from dohawatch.shared import ids
from dohawatch.shared.errors import ConfigError, SinkError
from dohawatch.shared.events import Alert
from dohawatch.shared.http_hints import retry_after_seconds

from . import render

__all__ = [
    "AppriseSink",
    "ConsoleSink",
    "EmailSink",
    "Sink",
    "SlackBotSink",
    "SlackWebhookSink",
    "WebhookSink",
    "format_alert",
]


class Sink(Protocol):
    """Something that delivers alerts to people."""

    kind: str  # slack, slack-bot, email, webhook, console: the metrics label

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        """Deliver one revision.

        Args:
            alert: the revision.
            reason: why the route hears about it (``routes.notify_reason``).
            thread: what ``send`` returned for the story's first delivery on
                this route (a Slack ``ts``, a ``Message-ID``), None for that first.

        Returns:
            The reference later revisions should thread under, or None.

        Raises:
            SinkError: the delivery failed.
        """
        ...

    async def send_digest(self, alerts: Sequence[Alert], digest_id: str) -> None:
        """Deliver several revisions as one message; raise ``SinkError`` on failure."""
        ...


def format_alert(alert: Alert) -> str:
    """A few readable lines: severity, type, headline, sources."""
    head = (
        f"[{alert.severity.value.upper():<8}] {alert.event_type} "
        f"(rev {alert.revision}, {len(alert.sources)} source"
        f"{'s' if len(alert.sources) != 1 else ''})"
    )
    lines = [head, f"    {alert.headline}"]
    lines += [f"    - {s.outlet}: {s.url}" for s in alert.sources]
    if alert.evidence:
        lines.append("    why: " + "; ".join(f'"{e.text}"' for e in alert.evidence))
    return "\n".join(lines)


class ConsoleSink:
    """Prints each alert revision to a stream (stdout by default)."""

    kind = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        print(format_alert(alert), file=self.stream, flush=True)
        return None

    async def send_digest(self, alerts: Sequence[Alert], digest_id: str) -> None:
        for alert in alerts:
            await self.send(alert, "digest", None)


async def _post(
    client: httpx.AsyncClient, url: str, *, json: Any = None, **kwargs: Any
) -> httpx.Response:
    """POST and translate transport failures and non-2xx answers into ``SinkError``."""
    try:
        response = await client.post(url, json=json, **kwargs)
    except httpx.TimeoutException as exc:
        raise SinkError("timeout", type(exc).__name__) from exc
    except httpx.HTTPError as exc:
        raise SinkError("unreachable", type(exc).__name__) from exc
    status = response.status_code
    if status < 300:
        return response
    detail = response.text[:200]
    if status == 429:
        wait = retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))
        raise SinkError("429", detail, retry_after=wait)
    if status >= 500:
        raise SinkError("5xx", detail)
    # 4xx: the request itself is wrong (bad payload, revoked webhook); retrying cannot help.
    raise SinkError("4xx", f"{status} {detail}", retriable=False)


class SlackWebhookSink:
    """Slack incoming webhook: Block Kit messages, one per revision sent.

    A webhook cannot edit or thread, so each revision a route hears about is a
    new message that says what changed. Each request carries the revision's id in
    ``X-Dohawatch-Delivery``, as webhooks do: Slack ignores it, and a proxy in
    front of Slack can tell a resend by it.
    """

    kind = "slack"

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        await _post(
            self.client,
            self.url,
            json=render.slack_message(alert, reason),
            headers={"X-Dohawatch-Delivery": ids.revision_id(alert.alert_id, alert.revision)},
        )
        return None

    async def send_digest(self, alerts: Sequence[Alert], digest_id: str) -> None:
        await _post(self.client, self.url, json=render.slack_digest(alerts))


# Web API errors a retry can cure; every other ``error`` means the request is wrong.
# https://api.slack.com/methods/chat.postMessage#errors
_SLACK_TRANSIENT = {"ratelimited", "service_unavailable", "fatal_error", "internal_error"}


class SlackBotSink:
    """Slack Web API with a bot token: ``chat.postMessage`` for a story's first
    revision, then a threaded reply (``thread``) or an edit of it (``update``)."""

    kind = "slack-bot"

    def __init__(
        self, client: httpx.AsyncClient, api_url: str, token: str, channel: str, mode: str
    ) -> None:
        self.client = client
        self.api_url = api_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.channel = channel
        self.mode = mode

    async def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await _post(
            self.client, f"{self.api_url}/{method}", json=body, headers=self.headers
        )
        try:
            answer: dict[str, Any] = response.json()
        except ValueError as exc:
            raise SinkError("bad-response", f"{method}: not JSON") from exc
        if not answer.get("ok"):
            error = str(answer.get("error", "unknown"))
            raise SinkError("api-error", f"{method}: {error}", retriable=error in _SLACK_TRANSIENT)
        return answer

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        body = {"channel": self.channel, **render.slack_message(alert, reason)}
        if thread is None:
            return str((await self._call("chat.postMessage", body))["ts"])
        if self.mode == "update":
            await self._call("chat.update", {**body, "ts": thread})
        else:
            await self._call("chat.postMessage", {**body, "thread_ts": thread})
        return thread

    async def send_digest(self, alerts: Sequence[Alert], digest_id: str) -> None:
        await self._call(
            "chat.postMessage", {"channel": self.channel, **render.slack_digest(alerts)}
        )


class WebhookSink:
    """Any HTTPS endpoint: the alert as JSON, signed with HMAC-SHA256.

    Headers: ``X-Dohawatch-Timestamp`` (Unix seconds), ``X-Dohawatch-Signature``
    (``render.sign``) and ``X-Dohawatch-Delivery``, the revision's id, for
    receivers that deduplicate.
    """

    kind = "webhook"

    def __init__(
        self, client: httpx.AsyncClient, route: str, url: str, secret: bytes | None
    ) -> None:
        self.client = client
        self.route = route
        self.url = url
        self.secret = secret

    async def _deliver(self, body: bytes, delivery: str) -> None:
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Dohawatch-Timestamp": str(stamp),
            "X-Dohawatch-Delivery": delivery,
        }
        if self.secret:
            headers["X-Dohawatch-Signature"] = render.sign(self.secret, stamp, body)
        await _post(self.client, self.url, content=body, headers=headers)

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        body = render.webhook_body(self.route, reason, [alert], digest=False)
        await self._deliver(body, ids.revision_id(alert.alert_id, alert.revision))
        return None

    async def send_digest(self, alerts: Sequence[Alert], digest_id: str) -> None:
        await self._deliver(
            render.webhook_body(self.route, "digest", alerts, digest=True), digest_id
        )


class AppriseSink:
    """Any channel Apprise reaches (Telegram, Teams, Discord, Matrix, ntfy...): one
    Apprise URL, the revision as a title and plain text. Apprise reports success
    or failure, not why; a failure is retried like any sink's."""

    kind = "apprise"

    def __init__(self, url: str, timeout: float) -> None:
        """A sink for the Apprise ``url``, each call bounded by ``timeout`` seconds.

        Raises:
            ConfigError: Apprise is not installed (``pip install 'dohawatch[apprise]'``),
                or does not know the URL's scheme; the URL is not quoted (it holds
                secrets).
        """
        # Apprise loads its plugins on the first URL; their imports' deprecations
        # are not ours to act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import apprise
            except ImportError as exc:
                raise ConfigError(
                    "the apprise sink needs Apprise: pip install 'dohawatch[apprise]'"
                ) from exc
            self._apprise = apprise.Apprise()
            known = self._apprise.add(url)
        self._success = apprise.AppriseResultStatus.SUCCESS
        self._timeout_status = apprise.AppriseResultStatus.TIMEOUT
        self._timeout = timeout
        if not known:
            scheme = url.partition("://")[0]
            raise ConfigError(f"Apprise does not take this URL (scheme {scheme!r})")

    async def _notify(self, title: str, body: str) -> None:
        result = await self._apprise.async_notify(
            title=title, body=body, body_format="text", timeout=self._timeout
        )
        if result.status == self._timeout_status:
            raise SinkError("timeout", f"no answer within {self._timeout} s")
        if result.status != self._success:
            raise SinkError("failed", f"Apprise reported {result.status.name.lower()}")

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        await self._notify(render.subject(alert), render.alert_text(alert, reason))
        return None

    async def send_digest(self, alerts: Sequence[Alert], digest_id: str) -> None:
        await self._notify(render.digest_subject(alerts), render.digest_text(alerts))


class EmailSink:
    """SMTP via aiosmtplib: a mail per revision, threaded per story, or a digest."""

    kind = "email"

    def __init__(
        self,
        route: str,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        tls: bool = False,
        timeout: float = 30.0,
        ca_file: str | None = None,
    ) -> None:
        self.route = route
        self.sender = sender
        self.recipients = tuple(recipients)
        self.options: dict[str, Any] = {
            "hostname": host,
            "port": port,
            "username": username,
            "password": password,
            "use_tls": tls,
            "start_tls": starttls and not tls,
            "timeout": timeout,
            "cert_bundle": ca_file,
        }

    async def _mail(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(message, **self.options)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SinkError("refused", "every recipient refused", retriable=False) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # RFC 5321 §4.2.1: 4yz is transient, 5yz permanent.
            raise SinkError(
                f"{exc.code // 100}xx", exc.message[:200], retriable=exc.code < 500
            ) from exc
        except aiosmtplib.SMTPTimeoutError as exc:
            raise SinkError("timeout", str(exc)[:200]) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SinkError("unreachable", f"{type(exc).__name__}: {exc}"[:200]) from exc

    async def send(self, alert: Alert, reason: str, thread: str | None) -> str | None:
        message = render.email_message(
            alert,
            reason,
            route=self.route,
            sender=self.sender,
            recipients=self.recipients,
            thread_root=thread,
        )
        await self._mail(message)
        return thread or str(message["Message-ID"])

    async def send_digest(self, alerts: Sequence[Alert], digest_id: str) -> None:
        await self._mail(
            render.email_digest(
                alerts, sender=self.sender, recipients=self.recipients, digest_id=digest_id
            )
        )
