"""What each sink sends, built from an alert: pure functions, no I/O.

Feed text is untrusted. In Slack it travels only in ``plain_text`` and
``rich_text`` elements, which Slack shows literally (no mentions, links or
formatting), and in the ``text`` fallback with ``& < >`` escaped as Slack's
formatting reference asks. In email it is HTML-escaped in the HTML part and
folded onto one line in headers; only http(s) links become anchors.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from dohawatch.shared import ids
from dohawatch.shared.events import Alert

from .stories import outlet_count

__all__ = [
    "alert_text",
    "digest_subject",
    "digest_text",
    "email_digest",
    "email_message",
    "message_id",
    "reason_text",
    "sign",
    "slack_digest",
    "slack_escape",
    "slack_message",
    "subject",
    "verify",
    "webhook_body",
]

MAX_SOURCES = 20  # Slack allows 50 blocks and a few thousand characters per list
HEADER_LIMIT = 150  # characters in a Slack header block (Block Kit reference)
TEXT_LIMIT = 3000  # characters in one Block Kit text, the limit of a section's text
QUOTE_LIMIT = 1000  # the evidence quoted: a few sentences at most
SOURCE_LIMIT = 300  # one source line: outlet and title
# Slack refuses a message whose blocks hold about 12,000 characters or more
# (msg_blocks_too_long); the rendered text stays under this budget.
MESSAGE_BUDGET = 10_000


def label(event_type: str) -> str:
    """``delegation_withdrawn`` → ``Delegation withdrawn``."""
    return event_type.replace("_", " ").capitalize()


def reason_text(reason: str) -> str:
    """A reader's wording of why a revision was sent."""
    if reason == "new":
        return "New"
    if reason == "severity":
        return "Severity raised"
    if reason.startswith("outlets>="):
        return f"Now reported by {reason.removeprefix('outlets>=')}+ outlets"
    return reason


def _one_line(text: str, limit: int | None = None) -> str:
    flat = " ".join(text.split())
    if limit is not None and len(flat) > limit:
        return flat[: limit - 1] + "…"
    return flat


def _is_web(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def slack_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives control meaning."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _summary_line(alert: Alert, reason: str) -> str:
    outlets = outlet_count(alert)
    return (
        f"{alert.severity.value.upper()} · {label(alert.event_type)} · {reason_text(reason)} · "
        f"{outlets} outlet{'s' if outlets != 1 else ''} · first seen "
        f"{alert.first_seen:%d %b %H:%M} UTC · revision {alert.revision}"
    )


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _source_item(outlet: str, title: str, url: str) -> dict[str, Any]:
    words = _one_line(f"{outlet}: {title}", SOURCE_LIMIT)
    element = {"type": "link", "url": url, "text": words} if _is_web(url) else _text(words)
    return {"type": "rich_text_section", "elements": [element]}


def slack_message(alert: Alert, reason: str) -> dict[str, Any]:
    """The Block Kit message for one revision (webhook body, or chat.postMessage fields)."""
    # Every text is capped to Block Kit's limits, and the message as a whole to
    # MESSAGE_BUDGET: past it, a 4xx from Slack would be final and the alert lost.
    quote = _one_line(" … ".join(_one_line(e.text) for e in alert.evidence), QUOTE_LIMIT)
    sources = alert.sources[:MAX_SOURCES]
    spent = HEADER_LIMIT + 300 + len(quote) + sum(SOURCE_LIMIT for _ in sources)
    limit = max(200, min(TEXT_LIMIT, MESSAGE_BUDGET - spent))
    summary = _one_line(alert.summary, limit)
    rich: list[dict[str, Any]] = []
    if summary:
        elements = [_text(summary)]
        first = next((src.url for src in alert.sources if _is_web(src.url)), None)
        if len(_one_line(alert.summary)) > limit and first:  # cut: the rest is a click away
            elements.append({"type": "link", "url": first, "text": " (full report)"})
        rich.append({"type": "rich_text_section", "elements": elements})
    if quote:
        rich.append({"type": "rich_text_quote", "elements": [_text(quote)]})
    items = [_source_item(s.outlet, s.title, s.url) for s in sources]
    if len(alert.sources) > len(sources):
        more = len(alert.sources) - len(sources)
        items.append({"type": "rich_text_section", "elements": [_text(f"and {more} more")]})
    rich.append({"type": "rich_text_list", "style": "bullet", "elements": items})
    fallback = f"[{alert.severity.value.upper()}] {label(alert.event_type)}: {alert.headline}"
    return {
        "text": slack_escape(_one_line(fallback, 300)),
        "mrkdwn": False,
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": _one_line(alert.headline, HEADER_LIMIT) or "(no headline)",
                    "emoji": False,
                },
            },
            {
                "type": "context",
                "elements": [
                    {"type": "plain_text", "text": _summary_line(alert, reason), "emoji": False}
                ],
            },
            {"type": "rich_text", "elements": rich},
        ],
    }


def slack_digest(alerts: Sequence[Alert]) -> dict[str, Any]:
    """One Block Kit message listing several alerts, most severe first."""
    ordered = sorted(alerts, key=lambda a: (-a.severity.rank, a.first_seen))
    items = [
        _source_item(
            f"{a.severity.value.upper()} {label(a.event_type)} ({outlet_count(a)} outlets)",
            a.headline,
            a.sources[0].url,
        )
        for a in ordered[:MAX_SOURCES]
    ]
    if len(ordered) > MAX_SOURCES:
        more = len(ordered) - MAX_SOURCES
        items.append({"type": "rich_text_section", "elements": [_text(f"and {more} more")]})
    title = f"dohawatch digest: {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    return {
        "text": title,
        "mrkdwn": False,
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": False}},
            {
                "type": "rich_text",
                "elements": [{"type": "rich_text_list", "style": "bullet", "elements": items}],
            },
        ],
    }


def message_id(alert: Alert, route: str, sender: str) -> str:
    """The ``Message-ID`` of a revision's mail: deterministic, so a resend is recognisable."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "dohawatch.invalid"
    return f"<{ids.revision_id(alert.alert_id, alert.revision)}.{route}@{domain}>"


def subject(alert: Alert) -> str:
    """A one-line title for a revision, the same for every revision of a story."""
    # Stable across revisions (severity and counts change, the story does not),
    # so mail clients that thread by subject agree with the References header.
    return _one_line(f"[dohawatch] {label(alert.event_type)}: {alert.headline}", 200)


def _html_link(url: str, text: str) -> str:
    if not _is_web(url):
        return html.escape(text)
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(text)}</a>'


def _alert_html(alert: Alert, reason: str) -> str:
    sources = "".join(
        f"<li>{_html_link(s.url, f'{s.outlet}: {s.title}')}</li>" for s in alert.sources
    )
    quote = " … ".join(e.text for e in alert.evidence)
    return (
        f"<h2>{html.escape(alert.headline)}</h2>"
        f"<p><strong>{html.escape(_summary_line(alert, reason))}</strong></p>"
        f"<p>{html.escape(alert.summary)}</p>"
        + (f"<blockquote>{html.escape(quote)}</blockquote>" if quote else "")
        + f"<ul>{sources}</ul>"
    )


def alert_text(alert: Alert, reason: str) -> str:
    """One revision as plain text: headline, why it is news, summary, evidence, sources."""
    lines = [alert.headline, _summary_line(alert, reason), "", alert.summary]
    if alert.evidence:
        lines += ["", "Why: " + " … ".join(f'"{e.text}"' for e in alert.evidence)]
    lines += ["", "Sources:"] + [f"- {s.outlet}: {s.title}\n  {s.url}" for s in alert.sources]
    return "\n".join(lines) + "\n"


def email_message(
    alert: Alert,
    reason: str,
    *,
    route: str,
    sender: str,
    recipients: Sequence[str],
    thread_root: str | None,
) -> EmailMessage:
    """A multipart text + HTML mail for one revision.

    Args:
        alert: the revision.
        reason: why it is sent (``notify_reason``).
        route: the route's name, part of the ``Message-ID``.
        sender: the ``From`` address.
        recipients: the ``To`` addresses.
        thread_root: ``Message-ID`` of the story's first mail on this route, so
            later revisions thread under it (RFC 5322 section 3.6.4); None for
            the first.
    """
    msg = EmailMessage()
    msg["Subject"] = ("Re: " if thread_root else "") + subject(alert)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(alert.updated_at)
    msg["Message-ID"] = message_id(alert, route, sender)
    if thread_root:
        msg["In-Reply-To"] = thread_root
        msg["References"] = thread_root
    msg["X-Dohawatch-Alert"] = ids.revision_id(alert.alert_id, alert.revision)
    msg["X-Dohawatch-Severity"] = alert.severity.value
    if alert.severity.rank >= 3:
        msg["Importance"] = "high"
    msg.set_content(alert_text(alert, reason))
    msg.add_alternative(f"<html><body>{_alert_html(alert, reason)}</body></html>", subtype="html")
    return msg


def _most_severe_first(alerts: Sequence[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (-a.severity.rank, a.first_seen))


def digest_subject(alerts: Sequence[Alert]) -> str:
    """The title of a digest of ``alerts``."""
    return f"[dohawatch] digest: {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"


def digest_text(alerts: Sequence[Alert]) -> str:
    """Several alerts as plain text, most severe first."""
    return "\n\n".join(alert_text(a, "new") for a in _most_severe_first(alerts))


def email_digest(
    alerts: Sequence[Alert], *, sender: str, recipients: Sequence[str], digest_id: str
) -> EmailMessage:
    """One mail listing several alerts, most severe first."""
    ordered = _most_severe_first(alerts)
    msg = EmailMessage()
    msg["Subject"] = digest_subject(alerts)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "dohawatch.invalid"
    msg["Message-ID"] = f"<{digest_id}@{domain}>"
    # RFC 5322 requires a Date; the newest revision's time keeps the mail a pure
    # function of its alerts, so a resent digest is the same mail.
    msg["Date"] = format_datetime(max(a.updated_at for a in alerts))
    msg.set_content(digest_text(alerts))
    body = "<hr>".join(_alert_html(a, "new") for a in ordered)
    msg.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    return msg


def webhook_body(route: str, reason: str, alerts: Sequence[Alert], *, digest: bool) -> bytes:
    """The JSON body of a webhook delivery: the alert contract plus why it was sent."""
    payload: dict[str, Any] = {"route": route}
    if digest:
        payload |= {
            "type": "dohawatch.digest",
            "alerts": [a.model_dump(mode="json") for a in alerts],
        }
    else:
        payload |= {
            "type": "dohawatch.alert",
            "reason": reason,
            "alert": alerts[0].model_dump(mode="json"),
        }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``{timestamp}.{body}``; the timestamp stops replays."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(secret: bytes, timestamp: int, body: bytes, signature: str) -> bool:
    """What a receiver checks: the signature matches, compared in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
