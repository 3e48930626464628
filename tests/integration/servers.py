"""Loopback servers that play the notifier's sinks: Slack (webhook and Web API)
and an SMTP mailbox (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Answer:
    """How the server answers one request."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    hold: threading.Event | None = None  # wait for this instead (bounded by 30 s)
    drip: float = 0.0  # send the body 16 bytes at a time, this many seconds apart


@dataclass
class Request:
    """One request the server received, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    received: float
    status: int = 0

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering from ``script`` (one answer per
    request, then ``default``). It plays Slack (the Web API methods answer
    ``{"ok": true, "ts": ...}``) and misbehaving feed servers."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.default = Answer()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Request(self.path, dict(self.headers), body, time.monotonic())
                with owner._lock:
                    owner.requests.append(request)
                    answer = owner.script.pop(0) if owner.script else owner.default
                if answer.hold is not None:
                    answer.hold.wait(30)
                time.sleep(answer.delay)
                payload = answer.body
                if self.path.startswith("/api/") and answer.status == 200:
                    ts = f"1753380000.{len(owner.requests):06d}"
                    payload = json.dumps({"ok": True, "ts": ts}).encode()
                request.status = answer.status
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if answer.drip:
                        for i in range(0, len(payload), 16):
                            self.wfile.write(payload[i : i + 16])
                            self.wfile.flush()
                            time.sleep(answer.drip)
                    else:
                        self.wfile.write(payload)
                except OSError:
                    request.status = -1  # the client had gone: nothing was accepted

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def accepted(self, path: str | None = None) -> list[Request]:
        """Requests answered 200, in order (those Slack would have posted)."""
        return [r for r in self.requests if r.status == 200 and (path is None or r.path == path)]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


SlackServer = ScriptedServer


class _Collector:
    def __init__(self, on_mail: Callable[[EmailMessage], None]) -> None:
        self.on_mail = on_mail

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.on_mail(message)
        return "250 Message accepted for delivery"


class Mailbox:
    """An SMTP server (aiosmtpd) on 127.0.0.1 keeping every mail it accepts; with
    ``tls``, it requires STARTTLS and, with ``login``, authentication over it."""

    def __init__(
        self, tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None
    ) -> None:
        self.mails: list[EmailMessage] = []
        self.logins: list[str] = []
        with socket.socket() as probe:  # aiosmtpd needs a concrete port to check it is up
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        options: dict[str, Any] = {}
        if tls is not None:
            options |= {"tls_context": tls, "require_starttls": True}
        if login is not None:
            options |= {"authenticator": self._authenticator(login), "auth_require_tls": True}
        self._controller = Controller(
            _Collector(self.mails.append), hostname="127.0.0.1", port=self.port, **options
        )

    def _authenticator(self, login: tuple[str, str]) -> Callable[..., AuthResult]:
        def check(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            given = (data.login.decode(), data.password.decode())
            ok = isinstance(data, LoginPassword) and given == login
            if ok:
                self.logins.append(given[0])
            return AuthResult(success=ok, handled=False)

        return check

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class ShortLengthServer:
    """A keep-alive HTTP server on 127.0.0.1 whose first answer declares a
    Content-Length ``short`` bytes smaller than the body it sends (a CMS counting
    characters instead of bytes); every later answer, on any connection, is ``good``."""

    def __init__(self, first: bytes, short: int, good: bytes) -> None:
        self.first, self.short, self.good = first, short, good
        self.connections = 0
        self.answered = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self._sock.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while self._running:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            conn.settimeout(10)
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    _, buffer = buffer.split(b"\r\n\r\n", 1)
                    with self._lock:
                        first = self.answered == 0
                        self.answered += 1
                    body = self.first if first else self.good
                    length = len(body) - (self.short if first else 0)
                    head = (
                        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                        f"Content-Length: {length}\r\n\r\n"
                    )
                    conn.sendall(head.encode() + body)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._sock.close()
