"""Delivery on real parts: the notifier on the embedded broker, a loopback Slack
and an aiosmtpd mailbox."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trustme
from aiokafka import AIOKafkaProducer

from dohawatch.app import RunPlan
from dohawatch.notifier import render
from dohawatch.shared.codec import decode, encode, header
from dohawatch.shared.config_file import RouteConfig
from dohawatch.shared.events import Alert, ClassifiedItem, EvidenceSpan, NewsItem, TaggedEvent
from dohawatch.shared.kafka import Topics, ensure_topics
from dohawatch.shared.settings import Settings
from tests.factories import until

from .conftest import configure, read_topic, running
from .servers import Answer, Mailbox, SlackServer

pytestmark = pytest.mark.integration
TOPICS = Topics.with_prefix("dohawatch.")
STORY = "st1-recall-2025-07-24"


def report(n: int) -> ClassifiedItem:
    """Outlet ``n``'s report of the 24 July recall, as the classifier tags it."""
    title = f"Israel recalls its negotiating team from Doha <!channel> (report {n})"
    item = NewsItem(
        item_id=f"it1-recall-{n}",
        feed_url=f"https://outlet{n}.example/feed",
        source=f"Outlet {n}",
        url=f"https://outlet{n}.example/recall",
        title=title,
        summary="The delegation returns for consultations after Hamas's response.",
        published_at=datetime.now(UTC),
        fetched_at=datetime.now(UTC),
        feed_tags=("wire",),
    )
    span = EvidenceSpan(field="title", start=7, end=14, text="recalls")
    return ClassifiedItem(
        item=item,
        relevant=True,
        relevance=0.95,
        events=(TaggedEvent(type="delegation_withdrawn", confidence=0.9, evidence=(span,)),),
        entities=(),
        story_key=STORY,
        classifier_version="test",
    )


async def publish(bootstrap: str, items: Sequence[ClassifiedItem]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for c in items:
            out = encode(c, TOPICS.classified)
            await producer.send_and_wait(out.topic, out.value, key=out.key, headers=out.headers)
    finally:
        await producer.stop()


def with_sinks(
    settings: Settings, slack: SlackServer, mailbox: Mailbox, **more: object
) -> Settings:
    """Settings with the default Slack and email routes pointed at the loopback servers."""
    return configure(
        settings,
        **{
            "slack_webhook_url": f"{slack.url}/services/T0/B0/x",
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox.port,
            "smtp_to": "desk@news.example, duty@news.example",
            "smtp_from": "dohawatch <alerts@news.example>",
            "smtp_starttls": False,
            "delivery_backoff_seconds": 0.05,
            **more,
        },
    )


def notifier(settings: Settings) -> contextlib.AbstractAsyncContextManager[RunPlan]:
    """The notifier alone, with the routes its settings imply."""
    return running(settings, services=["notifier"], routes=None)


def revisions(requests: Sequence[object]) -> list[int]:
    """The revision each Slack message was about (from its context line)."""
    out = []
    for r in requests:
        context = r.json["blocks"][1]["elements"][0]["text"]  # type: ignore[attr-defined]
        out.append(int(re.search(r"revision (\d+)", context).group(1)))  # type: ignore[union-attr]
    return out


async def test_ten_outlets_make_one_slack_message_and_one_mail_then_updates(
    settings: Settings, slack: SlackServer, mailbox: Mailbox
) -> None:
    """Ten reports of one recall: Slack and mail hear of it once, then at 3 and 10 outlets."""
    settings = with_sinks(settings, slack, mailbox)
    bootstrap = settings.kafka_bootstrap_servers or ""
    async with notifier(settings):
        for n in range(1, 11):
            await publish(bootstrap, [report(n)])
            if n in (1, 3, 10):  # wait for each notable revision, so none replaces another
                want = {1: 1, 3: 2, 10: 3}[n]
                await until(lambda want=want: len(slack.accepted()) == want)  # type: ignore[misc]
        await until(lambda: len(mailbox.mails) == 3)
        alerts = await read_topic(bootstrap, TOPICS.alerts, 10)
        await asyncio.sleep(1.0)  # time for any wrong extra delivery to show up
    assert [decode(r.value, r.headers, Alert).revision for r in alerts] == list(range(1, 11))
    assert len(slack.requests) == 3
    assert revisions(slack.accepted()) == [1, 3, 10]
    contexts = [r.json["blocks"][1]["elements"][0]["text"] for r in slack.accepted()]
    assert "New" in contexts[0]
    assert "Now reported by 3+ outlets" in contexts[1]
    assert "Now reported by 10+ outlets" in contexts[2]
    first = slack.accepted()[0].json
    assert first["blocks"][0]["text"]["text"].endswith("<!channel> (report 1)")  # plain_text
    assert "&lt;!channel&gt;" in first["text"]

    root, *replies = mailbox.mails
    assert [m["X-Dohawatch-Alert"].rsplit(".r", 1)[1] for m in mailbox.mails] == ["1", "3", "10"]
    assert root["To"] == "desk@news.example, duty@news.example"
    assert "In-Reply-To" not in root
    for reply in replies:
        assert reply["In-Reply-To"] == root["Message-ID"]
        assert reply["References"] == root["Message-ID"]
        assert reply["Subject"] == "Re: " + root["Subject"]
    html = root.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = root.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "&lt;!channel&gt;" in html
    assert "<!channel>" in text
    assert "https://outlet1.example/recall" in text


async def test_slack_429_500_and_a_timeout_are_retried_until_delivered(
    settings: Settings, slack: SlackServer, mailbox: Mailbox
) -> None:
    """Retry-After is honoured, errors and timeouts retried, and the message lands once."""
    slack.script = [
        Answer(429, b"rate_limited", {"Retry-After": "1"}),
        Answer(500, b"oops"),
        Answer(200, delay=2.0),  # slower than the client's timeout: not accepted
    ]
    settings = with_sinks(settings, slack, mailbox, delivery_timeout_seconds=0.5)
    async with notifier(settings) as plan:
        await publish(settings.kafka_bootstrap_servers or "", [report(1)])
        await until(lambda: len(slack.requests) == 4 and slack.requests[3].status == 200)
        async with httpx.AsyncClient() as client:
            ops = plan.contexts["notifier"].ops_port
            metrics = (await client.get(f"http://127.0.0.1:{ops}/metrics")).text
    # The third answer came after the client had given up, so the message was sent
    # again: the window, documented in the ledger, of a request whose answer is lost.
    assert [r.status for r in slack.requests][:2] == [429, 500]
    assert slack.requests[3].status == 200
    assert slack.requests[1].received - slack.requests[0].received >= 1.0  # Retry-After: 1
    bodies = {r.body for r in slack.requests}
    assert len(bodies) == 1, "every attempt sends the same message"
    for outcome, count in (("429", 1), ("5xx", 1), ("timeout", 1), ("ok", 1)):
        assert (
            f'dohawatch_deliveries_total{{outcome="{outcome}",route="slack",sink="slack"}} '
            f"{count}.0" in metrics
        )
    assert len(mailbox.mails) == 1, "a slow Slack does not hold up the mail"


async def test_a_sink_that_stays_down_goes_to_the_deadletter_topic_and_blocks_nothing(
    settings: Settings, slack: SlackServer, mailbox: Mailbox
) -> None:
    """Once it has waited its retry budget the revision is dead-lettered with why; mail
    still flows."""
    slack.default = Answer(503, b"down")
    settings = with_sinks(settings, slack, mailbox, delivery_give_up_after_seconds=2.0)
    bootstrap = settings.kafka_bootstrap_servers or ""
    async with notifier(settings):
        await publish(bootstrap, [report(1)])
        dead = await read_topic(bootstrap, TOPICS.deadletter, 1)
        await until(lambda: len(mailbox.mails) == 1)
    assert len(slack.requests) >= 2  # tried again, then given up
    assert header(dead[0].headers, "dlq_reason") == "sink-failed"
    assert header(dead[0].headers, "dlq_route") == "slack"
    assert "503" in (header(dead[0].headers, "dlq_detail") or "") or "5xx" in (
        header(dead[0].headers, "dlq_detail") or ""
    )
    assert decode(dead[0].value, dead[0].headers, Alert).revision == 1


async def test_bot_mode_threads_later_revisions_under_the_first_message(
    settings: Settings, slack: SlackServer
) -> None:
    """chat.postMessage first, then replies carrying the first message's ts, with the token."""
    settings = configure(
        settings,
        slack_bot_token="xoxb-test-token",
        slack_channel="C0DESK",
        slack_api_url=f"{slack.url}/api",
        slack_thread_mode="thread",
        delivery_backoff_seconds=0.05,
    )
    bootstrap = settings.kafka_bootstrap_servers or ""
    async with notifier(settings):
        await publish(bootstrap, [report(1)])
        await until(lambda: len(slack.accepted()) == 1)
        await publish(bootstrap, [report(2), report(3)])
        await until(lambda: len(slack.accepted()) == 2)
    first, reply = (r.json for r in slack.accepted())
    assert {r.path for r in slack.accepted()} == {"/api/chat.postMessage"}
    assert first["channel"] == "C0DESK"
    assert "thread_ts" not in first
    assert reply["thread_ts"] == "1753380000.000001"
    assert slack.accepted()[0].headers["Authorization"] == "Bearer xoxb-test-token"


async def test_webhook_deliveries_are_signed(settings: Settings, slack: SlackServer) -> None:
    """The generic webhook gets the alert JSON with an HMAC the receiver can verify."""
    settings = configure(settings, webhook_url=f"{slack.url}/hook", webhook_secret="s3cret")
    async with notifier(settings):
        await publish(settings.kafka_bootstrap_servers or "", [report(1)])
        await until(lambda: len(slack.accepted()) == 1)
    request = slack.accepted()[0]
    stamp = int(request.headers["X-Dohawatch-Timestamp"])
    assert render.verify(b"s3cret", stamp, request.body, request.headers["X-Dohawatch-Signature"])
    assert request.json["alert"]["story_key"] == STORY
    assert request.headers["X-Dohawatch-Delivery"] == request.json["alert"]["alert_id"] + ".r1"


def notifier_process(settings: Settings, slack: SlackServer, mailbox: Mailbox, state: Path):
    """``dohawatch notifier`` as its own process, configured by environment only."""
    env = {
        **os.environ,
        "DOHAWATCH_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "DOHAWATCH_KAFKA_IDEMPOTENCE": "false",
        "DOHAWATCH_KAFKA_REBALANCE_TIMEOUT_MS": "1000",
        "DOHAWATCH_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "DOHAWATCH_TOPIC_PARTITIONS": "3",
        "DOHAWATCH_STATE_DIR": str(state),
        "DOHAWATCH_NOTIFIER_HTTP_PORT": "0",
        "DOHAWATCH_SLACK_WEBHOOK_URL": f"{slack.url}/services/T0/B0/x",
        "DOHAWATCH_SMTP_HOST": "127.0.0.1",
        "DOHAWATCH_SMTP_PORT": str(mailbox.port),
        "DOHAWATCH_SMTP_TO": "desk@news.example",
        "DOHAWATCH_SMTP_STARTTLS": "false",
        "DOHAWATCH_LOG_LEVEL": "WARNING",
    }
    return asyncio.create_subprocess_exec(
        sys.executable, "-m", "dohawatch", "notifier", env=env, stdin=asyncio.subprocess.DEVNULL
    )


async def test_killing_the_notifier_mid_delivery_delivers_each_revision_once(
    settings: Settings, slack: SlackServer, mailbox: Mailbox, tmp_path: Path
) -> None:
    """SIGKILL while Slack holds a request: after restart every notable revision
    reaches each route exactly once, and nothing delivered before is sent again."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    await ensure_topics(settings, bootstrap, TOPICS)  # before the first publish creates one
    held = threading.Event()
    slack.script = [Answer(200), Answer(503, hold=held)]  # rev 3 hangs, then is refused
    process = await notifier_process(settings, slack, mailbox, tmp_path)
    try:
        await publish(bootstrap, [report(1)])
        await until(lambda: len(slack.accepted()) == 1, 40)
        await publish(bootstrap, [report(2), report(3)])
        await until(lambda: len(slack.requests) == 2 and len(mailbox.mails) == 2, 40)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    held.set()
    await until(lambda: slack.requests[1].status != 0)  # answered, or found the client gone
    assert slack.requests[1].status != 200
    process = await notifier_process(settings, slack, mailbox, tmp_path)
    try:
        await until(lambda: len(slack.accepted()) == 2, 40)
        await publish(bootstrap, [report(n) for n in range(4, 11)])
        await until(lambda: len(slack.accepted()) == 3 and len(mailbox.mails) == 3, 40)
        await asyncio.sleep(1.0)  # time for any wrong extra delivery to show up
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    assert revisions(slack.accepted()) == [1, 3, 10]
    assert [m["X-Dohawatch-Alert"].rsplit(".r", 1)[1] for m in mailbox.mails] == ["1", "3", "10"]


async def test_mail_goes_over_starttls_with_login_and_a_bad_password_is_dead_lettered(
    settings: Settings, tmp_path: Path
) -> None:
    """STARTTLS verified against the configured CA, then AUTH; a refused login (535)
    is not retried but dead-lettered with the server's answer."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    box = Mailbox(tls=server_tls, login=("desk", "s3cret"))
    box.start()
    try:
        base = {
            "smtp_host": "127.0.0.1",
            "smtp_port": box.port,
            "smtp_to": "desk@news.example",
            "smtp_starttls": True,
            "smtp_ca_file": tmp_path / "ca.pem",
            "smtp_username": "desk",
            "delivery_backoff_seconds": 0.05,
        }
        bootstrap = settings.kafka_bootstrap_servers or ""
        async with notifier(configure(settings, **base, smtp_password="s3cret")):
            await publish(bootstrap, [report(1)])
            await until(lambda: len(box.mails) == 1)
        async with notifier(configure(settings, **base, smtp_password="wrong")):
            await publish(bootstrap, [report(n) for n in (2, 3)])
            dead = await read_topic(bootstrap, TOPICS.deadletter, 1)
    finally:
        box.stop()
    assert box.logins == ["desk"]
    assert box.mails[0]["X-Dohawatch-Alert"].endswith(".r1")
    assert header(dead[0].headers, "dlq_route") == "email"
    assert "535" in (header(dead[0].headers, "dlq_detail") or "") or "5xx" in (
        header(dead[0].headers, "dlq_detail") or ""
    )


async def test_an_apprise_route_delivers_through_apprise_and_retries_a_failure(
    settings: Settings, slack: SlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An `apprise` route with a json:// URL from its variable posts the revision
    to a loopback receiver; a 500 is retried like any sink's failure, and counted."""
    monkeypatch.setenv("DESK_APPRISE_URL", f"json://127.0.0.1:{slack.url.rpartition(':')[2]}/desk")
    slack.script = [Answer(500, b"down")]
    route = RouteConfig(name="desk", sink="apprise", url_env="DESK_APPRISE_URL")
    settings = configure(settings, delivery_backoff_seconds=0.05)
    async with running(settings, services=["notifier"], routes=[route]) as plan:
        await publish(settings.kafka_bootstrap_servers or "", [report(1)])
        await until(lambda: len(slack.accepted("/desk")) == 1)
        ops = plan.contexts["notifier"].ops_port
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{ops}/metrics")).text
    posted = slack.accepted("/desk")[0].json
    assert "Israel recalls its negotiating team from Doha" in posted["title"]
    assert "Outlet 1" in posted["message"]
    assert [r.status for r in slack.requests] == [500, 200]
    assert 'dohawatch_deliveries_total{outcome="failed",route="desk",sink="apprise"} 1.0' in metrics
