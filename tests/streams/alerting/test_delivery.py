"""Delivery against a real local HTTP receiver that verifies signatures like a production one."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import httpx
import pytest

from streams.alerting.delivery import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    backoff,
    render,
    send,
    verify,
)
from streams.alerting.rules import Channel
from streams.alerting.state import Notification

SECRET = "test-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any
    signature_ok: bool
    status: int


class Receiver:
    """``ThreadingHTTPServer`` on 127.0.0.1 that checks the HMAC of each body and records requests.

    ``responses`` is a script of ``(status, headers)`` answers, then 200s. ``stop()`` closes the
    port (receiver down); ``start()`` again re-binds the same port (receiver back up).
    """

    def __init__(self, secret: str = SECRET, port: int = 0):
        self.secret = secret
        self.port = port
        self.requests: list[Received] = []
        self.responses: list[tuple[int, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def idempotency_keys(self) -> list[str]:
        return [r.headers[IDEMPOTENCY_HEADER] for r in self.requests]

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = verify(receiver.secret, body, self.headers.get(SIGNATURE_HEADER))
                status, extra = receiver.responses.pop(0) if receiver.responses else (200, {})
                status = status if ok else 401
                receiver.requests.append(Received(self.path, dict(self.headers), body, json.loads(body), ok, status))
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def channel(url: str, type: str = "webhook", **kw: Any) -> Channel:
    return Channel(name=type, type=type, url=url, secret=SECRET, timeout_s=2.0, max_retries=2, backoff_s=0.001, **kw)


def notification(status: str = "firing") -> Notification:
    return Notification(
        notification_id="idem-1", alert_id="alert-1", rule="injections", kind="flagged_rate",
        severity="critical", status=status, key={"service_name": "chat", "request_model": "gpt-x"},
        labels={"team": "platform"}, value=0.5, threshold=0.05, started_at=1_700_000_000.0,
        event_at=1_700_000_060.0, summary="injections: injection flagged rate 50.0% vs threshold 5.0%",
        channel_status={"webhook": "pending"}, channel_attempts={"webhook": 0},
    )


def test_webhook_is_signed_over_the_exact_body_with_idempotency_headers(receiver: Receiver) -> None:
    with httpx.Client() as http:
        result = send(channel(receiver.url), notification(), http)
    assert result.delivered and [a.outcome for a in result.attempts] == ["delivered"]
    (req,) = receiver.requests
    assert req.signature_ok
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers[IDEMPOTENCY_HEADER] == "idem-1"
    assert req.headers[TIMESTAMP_HEADER].isdigit()
    assert req.payload["status"] == "firing" and req.payload["key"]["service_name"] == "chat"
    assert req.body == render(channel(receiver.url), notification())[1]


def test_a_wrong_secret_fails_verification(receiver: Receiver) -> None:
    with httpx.Client() as http:
        result = send(replace(channel(receiver.url), secret="other"), notification(), http)
    assert result.rejected and receiver.requests[0].status == 401 and not receiver.requests[0].signature_ok


def test_slack_payload_shape(receiver: Receiver) -> None:
    with httpx.Client() as http:
        send(channel(receiver.url + "/slack", type="slack"), notification("resolved"), http)
    payload = receiver.requests[0].payload
    assert payload["text"].startswith("[RESOLVED] injections")
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "section", "context"]
    assert all(f["type"] == "mrkdwn" for f in payload["blocks"][2]["fields"])


def test_alertmanager_payload_is_a_list_posted_to_api_v2_alerts(receiver: Receiver) -> None:
    with httpx.Client() as http:
        send(channel(receiver.url, type="alertmanager"), notification(), http)
        send(channel(receiver.url, type="alertmanager"), notification("resolved"), http)
    firing, resolved = receiver.requests
    assert firing.path == "/api/v2/alerts"
    (alert,) = firing.payload
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt"}
    assert alert["labels"] == {"alertname": "injections", "severity": "critical", "llmwatch_kind": "flagged_rate",
                               "service_name": "chat", "request_model": "gpt-x", "team": "platform"}
    assert alert["startsAt"] == "2023-11-14T22:13:20.000Z" and alert["endsAt"] > alert["startsAt"]
    assert resolved.payload[0]["endsAt"] == "2023-11-14T22:14:20.000Z"


def test_retries_5xx_and_429_with_retry_after_but_not_other_4xx(receiver: Receiver) -> None:
    receiver.responses = [(503, {}), (429, {"Retry-After": "0"})]
    with httpx.Client() as http:
        ok = send(channel(receiver.url), notification(), http, sleep=lambda s: None)
        receiver.responses = [(400, {})]
        bad = send(channel(receiver.url), notification(), http, sleep=lambda s: None)
    assert [a.outcome for a in ok.attempts] == ["retry", "retry", "delivered"] and ok.delivered
    assert [a.http_status for a in ok.attempts] == [503, 429, 200]
    assert [a.outcome for a in bad.attempts] == ["rejected"] and bad.rejected


def test_long_retry_after_is_left_to_a_later_tick(receiver: Receiver) -> None:
    receiver.responses = [(429, {"Retry-After": "120"})]
    slept: list[float] = []
    with httpx.Client() as http:
        result = send(channel(receiver.url), notification(), http, sleep=slept.append, clock=lambda: 1000.0)
    assert len(result.attempts) == 1 and not result.delivered and result.retry_at == 1120.0 and slept == []


def test_connection_refused_exhausts_retries_with_backoff() -> None:
    down = Receiver().start()
    down.stop()  # the port is now closed
    slept: list[float] = []
    with httpx.Client() as http:
        result = send(channel(down.url), notification(), http, sleep=slept.append, first_attempt=4)
    assert [a.outcome for a in result.attempts] == ["retry"] * 3
    assert [a.attempt for a in result.attempts] == [4, 5, 6]
    assert "ConnectError" in result.attempts[0].error and not result.delivered and len(slept) == 2


def test_backoff_grows_exponentially_within_jitter_and_cap() -> None:
    ch = Channel(name="c", type="webhook", url="http://x", backoff_s=1.0, max_backoff_s=10.0)
    assert [backoff(ch, i, rng=lambda: 0.5) for i in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert 0.5 <= backoff(ch, 0, rng=lambda: 0.0) and backoff(ch, 0, rng=lambda: 0.999) < 1.5
