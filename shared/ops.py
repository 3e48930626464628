"""The operations endpoint of each service: ``/metrics``, ``/healthz`` and ``/readyz``.

Served from a daemon thread by the standard library's WSGI server with
prometheus-client's exposition, so a busy event loop never delays a scrape.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["OpsServer", "Readiness"]

StartResponse = Callable[..., Any]


class Readiness:
    """Named conditions a service needs before it can do its work (Kafka, sinks).

    ``/readyz`` answers 200 only when every registered condition is true.
    """

    def __init__(self, *conditions: str) -> None:
        self._lock = threading.Lock()
        self._state = dict.fromkeys(conditions, False)

    def set(self, condition: str, ready: bool = True) -> None:
        """Mark ``condition`` as met (or no longer met)."""
        with self._lock:
            self._state[condition] = ready

    def snapshot(self) -> dict[str, bool]:
        """Each condition and whether it holds."""
        with self._lock:
            return dict(self._state)

    @property
    def ready(self) -> bool:
        """True when every condition holds."""
        return all(self.snapshot().values())


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


class OpsServer:
    """Serves the three endpoints on ``host:port`` until :meth:`stop`."""

    def __init__(
        self, registry: CollectorRegistry, readiness: Readiness, host: str, port: int
    ) -> None:
        self._metrics = make_wsgi_app(registry)
        self._readiness = readiness
        self._server = make_server(host, port, self._app, _ThreadingServer, _QuietHandler)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name=f"ops-{self.port}"
        )

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            return self._json(start_response, "200 OK", {"status": "alive"})
        if path == "/readyz":
            state = self._readiness.snapshot()
            ok = all(state.values())
            status = "200 OK" if ok else "503 Service Unavailable"
            return self._json(start_response, status, {"ready": ok, "conditions": state})
        if path == "/metrics":
            body: Iterable[bytes] = self._metrics(environ, start_response)
            return body
        return self._json(start_response, "404 Not Found", {"error": "not found"})

    @staticmethod
    def _json(start_response: StartResponse, status: str, body: object) -> list[bytes]:
        data = json.dumps(body).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    def start(self) -> None:
        """Start serving in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
