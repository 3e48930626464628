"""What the sinks send: Block Kit, mail and webhook bodies, and their escaping."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import parsedate_to_datetime

from hypothesis import given
from hypothesis import strategies as st

from dohawatch.notifier import render
from dohawatch.shared.events import EvidenceSpan, Severity
from dohawatch.shared.http_hints import retry_after_seconds

from .test_routes import alert
from .test_stories import NOW

HOSTILE = "<!channel> <@U123> *bold* <https://evil.example|click> & <script>x</script>"


def hostile_alert():  # type: ignore[no-untyped-def]
    a = alert(outlets=2)
    source = a.sources[0].model_copy(
        update={"title": HOSTILE, "url": "javascript:alert(1)", "outlet": "Evil <b>Times</b>"}
    )
    span = EvidenceSpan(field="title", start=0, end=5, text=HOSTILE)
    return a.model_copy(
        update={
            "headline": HOSTILE,
            "summary": HOSTILE + "\nsecond line",
            "sources": (source, a.sources[1]),
            "evidence": (span,),
        }
    )


def _strings(node: object) -> list[tuple[str, str]]:
    """Every (key, string) pair in a JSON tree."""
    if isinstance(node, dict):
        return [
            pair
            for k, v in node.items()
            for pair in ([(k, v)] if isinstance(v, str) else _strings(v))
        ]
    if isinstance(node, list):
        return [pair for v in node for pair in _strings(v)]
    return []


def test_slack_message_shows_feed_text_literally() -> None:
    """Feed text reaches Slack as plain or rich text, or escaped: no mention, link or markup."""
    message = render.slack_message(hostile_alert(), "new")
    assert "<" not in message["text"]
    assert "&lt;!channel&gt;" in message["text"]
    assert message["mrkdwn"] is False
    for block in message["blocks"]:
        assert block["type"] in {"header", "context", "rich_text"}
    kinds = {k: v for k, v in _strings(message["blocks"]) if k == "type"}
    assert "mrkdwn" not in kinds.values()
    texts = [v for k, v in _strings(message["blocks"]) if k == "text"]
    assert all("\n" not in t for t in texts)
    links = [v for k, v in _strings(message["blocks"]) if k == "url"]
    assert links == ["https://o1.example/x"], "a javascript: link must not become a link"


def test_slack_message_carries_what_the_desk_needs() -> None:
    """Severity, event type, headline, evidence quote, sources as links and first seen."""
    a = alert(outlets=3).model_copy(
        update={"evidence": (EvidenceSpan(field="title", start=0, end=7, text="recalls"),)}
    )
    message = render.slack_message(a, "outlets>=3")
    blocks = message["blocks"]
    assert blocks[0]["text"]["text"] == a.headline
    context = blocks[1]["elements"][0]["text"]
    for part in ("HIGH", "Delegation withdrawn", "3+ outlets", "first seen 24 Jul 18:00 UTC"):
        assert part in context
    rich = blocks[2]["elements"]
    assert rich[1] == {"type": "rich_text_quote", "elements": [{"type": "text", "text": "recalls"}]}
    assert [e["elements"][0]["url"] for e in rich[2]["elements"]] == [s.url for s in a.sources]
    assert len(json.dumps(message)) < 40_000


def test_email_threads_a_storys_revisions_and_escapes_html() -> None:
    """Later revisions reply to the first mail; feed text is escaped in the HTML part."""
    a = hostile_alert()
    first = render.email_message(
        a,
        "new",
        route="desk",
        sender="Desk <desk@news.example>",
        recipients=["a@x"],
        thread_root=None,
    )
    root = first["Message-ID"]
    assert root == f"<{a.alert_id}.r1.desk@news.example>"
    assert "In-Reply-To" not in first
    later = render.email_message(
        a.model_copy(update={"revision": 2}),
        "outlets>=3",
        route="desk",
        sender="desk@news.example",
        recipients=["a@x", "b@x"],
        thread_root=root,
    )
    assert later["In-Reply-To"] == root
    assert later["References"] == root
    assert later["Subject"] == "Re: " + first["Subject"]
    assert later["To"] == "a@x, b@x"
    assert "\n" not in first["Subject"]
    text = first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = first.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert HOSTILE in text
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert first["Importance"] == "high"


def test_webhook_signature_verifies_and_detects_tampering() -> None:
    """The HMAC covers timestamp and body: change either and verification fails."""
    body = render.webhook_body("hooks", "new", [alert()], digest=False)
    assert json.loads(body)["alert"]["alert_id"] == "al1-x"
    signature = render.sign(b"k3y", 1_753_380_000, body)
    assert render.verify(b"k3y", 1_753_380_000, body, signature)
    assert not render.verify(b"k3y", 1_753_380_001, body, signature)
    assert not render.verify(b"k3y", 1_753_380_000, body + b" ", signature)
    assert not render.verify(b"other", 1_753_380_000, body, signature)


def test_digest_lists_the_most_severe_first() -> None:
    """A digest orders alerts by severity, then first seen."""
    low = alert(severity=Severity.LOW).model_copy(update={"headline": "low one"})
    critical = alert(severity=Severity.CRITICAL).model_copy(update={"headline": "critical one"})
    digest = render.slack_digest([low, critical])
    items = digest["blocks"][1]["elements"][0]["elements"]
    assert "critical one" in items[0]["elements"][0]["text"]
    assert digest["text"] == "dohawatch digest: 2 alerts"


def _texts(node: object) -> list[str]:
    """Every "text" string in a Block Kit structure."""
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return own + [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def test_a_huge_summary_is_cut_to_slacks_limits_with_a_link_to_the_source() -> None:
    """A 14,000-character summary, long evidence and 30 sources stay under Slack's limits:
    each text within Block Kit's, all of them under the message budget, the cut summary
    ending in an ellipsis and followed by a link to the report."""
    big = alert(outlets=30).model_copy(
        update={
            "headline": "H" * 400,
            "summary": "word " * 2800,
            "evidence": (EvidenceSpan(field="summary", start=0, end=5000, text="e" * 5000),),
        }
    )
    message = render.slack_message(big, "new")
    texts = _texts(message["blocks"])
    assert max(len(t) for t in texts) <= render.TEXT_LIMIT
    assert sum(map(len, texts)) <= render.MESSAGE_BUDGET
    assert len(message["blocks"][0]["text"]["text"]) <= render.HEADER_LIMIT
    section = message["blocks"][2]["elements"][0]["elements"]
    assert section[0]["text"].endswith("…")
    assert section[1] == {"type": "link", "url": big.sources[0].url, "text": " (full report)"}


def test_a_short_summary_is_whole_and_has_no_extra_link() -> None:
    """A summary within the limits is shown whole, with no "(full report)" link."""
    section = render.slack_message(alert(), "new")["blocks"][2]["elements"][0]["elements"]
    assert section == [{"type": "text", "text": "The team returns for consultations."}]


def test_a_digest_mail_carries_the_date_rfc_5322_requires() -> None:
    """A digest mail has a Date header: the newest revision's time."""
    older = alert()
    newer = alert().model_copy(update={"updated_at": older.updated_at + timedelta(minutes=5)})
    mail = render.email_digest(
        [older, newer],
        sender="dohawatch@desk.example",
        recipients=["a@desk.example"],
        digest_id="d1",
    )
    assert mail["Date"] is not None
    assert parsedate_to_datetime(mail["Date"]) == newer.updated_at


@given(st.integers(0, 10**6))
def test_retry_after_reads_seconds(seconds: int) -> None:
    """Retry-After as delta-seconds is read as is."""
    assert retry_after_seconds(str(seconds), NOW) == seconds


def test_retry_after_reads_http_dates_and_ignores_garbage() -> None:
    """Retry-After as an HTTP date is a delay from now; nonsense is ignored."""
    assert retry_after_seconds("Thu, 24 Jul 2025 18:00:30 GMT", NOW) == 30
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None
