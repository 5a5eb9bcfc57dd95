"""llmwatch's ``alertmanager`` channel against a real Prometheus Alertmanager (no fakes).

Alertmanager is built from source once (``streams.devtools.alertmanager``, ~2 minutes, cached
under ``$LLMWATCH_CACHE``) and forwards to a local webhook. Notifications go out through
:meth:`AlertEngine.deliver`, the delivery half the worker runs (``streams/agents/alerts.py``),
which calls :func:`streams.alerting.delivery.send`. Only ClickHouse is left out: alert state
advances with :meth:`AlertStates.update` (what ``AlertEngine.evaluate`` does with query results)
and history writes go to a list, as the worker collects them before writing back.

Without Go this FAILS (it does not skip): the Alertmanager contract is otherwise untested.
"""
from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from streams.alerting import AlertEngine, AlertRules, TickResult
from streams.alerting.delivery import alertmanager_payload, render, send
from streams.alerting.evaluate import Observation
from streams.alerting.state import Notification
from streams.devtools.alertmanager import AlertmanagerSetupError, LocalAlertmanager, ensure_alertmanager

GENERATOR_URL = "http://grafana.local:3000/d/llmwatch"


def require_alertmanager() -> Path:
    """The cached Alertmanager binary; ``pytest.fail`` (never skip) naming the fix if it cannot be built."""
    try:
        return ensure_alertmanager()
    except AlertmanagerSetupError as exc:
        reason = f"real Alertmanager unavailable: {exc}"
    pytest.fail(reason, pytrace=False)  # outside the except: no chained traceback, just the reason


@pytest.fixture(scope="session")
def alertmanager_binary(pytestconfig: pytest.Config) -> Path:
    """Built once per cache; the build's progress lines show even under captured output."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        return require_alertmanager()


class WebhookSink:
    """Alertmanager's webhook receiver: records each JSON body and answers 200.

    (``test_delivery.Receiver`` answers 401 to unsigned bodies; Alertmanager does not sign, and a
    failed first notification would also stop Alertmanager from ever sending the resolution.)
    """

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._changed:
                    sink.payloads.append(json.loads(body))
                    sink._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alertmanager-webhook"

    def wait_for(self, alertname: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
        """The first notification whose group is ``alertname`` and whose status is ``status``."""
        def match() -> dict[str, Any] | None:
            return next((p for p in self.payloads
                         if p.get("commonLabels", {}).get("alertname") == alertname and p.get("status") == status), None)

        with self._changed:
            if not self._changed.wait_for(lambda: match() is not None, timeout):
                seen = [(p.get("commonLabels", {}).get("alertname"), p.get("status")) for p in self.payloads]
                raise AssertionError(f"no {status!r} notification for {alertname!r} within {timeout}s; got {seen}")
            return cast(dict[str, Any], match())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def sink() -> Iterator[WebhookSink]:
    server = WebhookSink()
    yield server
    server.close()


@pytest.fixture(scope="module")
def alertmanager(alertmanager_binary: Path, sink: WebhookSink) -> Iterator[LocalAlertmanager]:
    with LocalAlertmanager(sink.url, binary=alertmanager_binary, group_wait="1s", group_interval="1s") as am:
        yield am


def rules_for(am: LocalAlertmanager, rule: str) -> AlertRules:
    """An alerts.yaml as a user writes it: one error_rate rule delivered to an alertmanager channel."""
    return AlertRules.parse(f"""
generator_url: {GENERATOR_URL}
channels:
  am: {{type: alertmanager, url: "{am.url}", timeout: 5s, max_retries: 1, backoff: 100ms}}
rules:
  - name: {rule}
    kind: error_rate
    threshold: 0.05
    for: 0s
    severity: critical
    labels: {{team: platform}}
    description: More than 5% of LLM calls fail.
    deliveries: [am]
""")


def deliver(engine: AlertEngine, notifications: list[Notification], now: float) -> TickResult:
    """Queue ``notifications`` and run the worker's delivery half; history rows go to a list."""
    engine.queue += notifications
    written: list[Any] = []
    result = engine.deliver(TickResult(now, notifications=notifications), write=lambda *row: written.append(row))
    assert written, "delivery recorded nothing"
    return result


def parse_time(text: str) -> float:
    """Alertmanager's RFC 3339 (nanoseconds, ``Z``) as unix seconds."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def test_firing_then_resolved_reach_the_webhook_through_real_alertmanager(
    alertmanager: LocalAlertmanager, sink: WebhookSink,
) -> None:
    rules = rules_for(alertmanager, "llm-errors")
    rule = rules.rule("llm-errors")
    engine = AlertEngine(rules, cast(Client, None))  # ClickHouse is not touched by deliver()
    key = {"service_name": "chat", "request_model": "gpt-x", "prompt_version": "v7"}
    fired_at = time.time()
    (firing,) = engine.states.update(rule, [Observation(rule, key, 0.25, 0.05, True, {"calls": 40})], fired_at)
    result = deliver(engine, [firing], fired_at)

    assert [(a.outcome, a.http_status) for a in result.attempts] == [("delivered", 200)]
    assert firing.channel_status == {"am": "delivered"} and engine.queue == []
    sent = alertmanager_payload(firing, GENERATOR_URL)[0]
    assert sent["labels"] == {"alertname": "llm-errors", "severity": "critical", "llmwatch_kind": "error_rate",
                              "team": "platform", **key}
    hook = sink.wait_for("llm-errors", "firing")
    assert hook["version"] == "4" and hook["status"] == "firing" and hook["receiver"] == "webhook"
    (alert,) = hook["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == sent["labels"] and hook["commonLabels"] == sent["labels"]
    assert alert["annotations"] == sent["annotations"]
    assert alert["annotations"]["description"] == "More than 5% of LLM calls fail."
    assert alert["annotations"]["value"] == "0.25" and alert["annotations"]["alert_id"] == firing.alert_id
    assert alert["generatorURL"] == GENERATOR_URL
    assert parse_time(alert["startsAt"]) == pytest.approx(fired_at, abs=0.001)
    held = [a for a in alertmanager.alerts() if a["labels"].get("alertname") == "llm-errors"]
    assert len(held) == 1 and held[0]["status"]["state"] == "active"

    resolved_at = time.time()
    (resolved,) = engine.states.update(rule, [Observation(rule, key, 0.01, 0.05, False)], resolved_at)
    result = deliver(engine, [resolved], resolved_at)

    assert [(a.outcome, a.http_status) for a in result.attempts] == [("delivered", 200)]
    hook = sink.wait_for("llm-errors", "resolved")
    assert hook["version"] == "4" and hook["status"] == "resolved"
    (alert,) = hook["alerts"]
    assert alert["status"] == "resolved" and alert["labels"] == sent["labels"]
    assert alert["annotations"]["alert_id"] == firing.alert_id
    assert alert["annotations"]["summary"].startswith("resolved: ")
    assert parse_time(alert["startsAt"]) == pytest.approx(fired_at, abs=0.001)
    assert parse_time(alert["endsAt"]) == pytest.approx(resolved_at, abs=0.001)


def test_v2_api_accepts_llmwatch_payload_and_refuses_a_malformed_one(alertmanager: LocalAlertmanager) -> None:
    rules = rules_for(alertmanager, "llm-contract")
    rule, channel = rules.rule("llm-contract"), rules.channels["am"]
    engine = AlertEngine(rules, cast(Client, None))
    now = time.time()
    (firing,) = engine.states.update(rule, [Observation(rule, {"service_name": "search"}, 0.5, 0.05, True)], now)
    url, body = render(channel, firing, rules.generator_url)
    assert url == alertmanager.url + "/api/v2/alerts"

    accepted = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
    assert accepted.status_code == 200, accepted.text
    held = [a for a in alertmanager.alerts() if a["labels"].get("alertname") == "llm-contract"]
    assert [a["labels"]["service_name"] for a in held] == ["search"]

    malformed = json.loads(body)
    malformed[0]["labels"] = {}
    refused = httpx.post(url, json=malformed)
    assert refused.status_code == 400 and "label" in refused.text

    # Through llmwatch's own sender: an alert that ends before it starts is a 400, and a 400 is
    # final ("rejected"), not retried.
    backwards = replace(firing, status="resolved", event_at=firing.started_at - 60)
    with httpx.Client() as http:
        result = send(channel, backwards, http)
    assert result.rejected and not result.delivered
    assert [(a.outcome, a.http_status) for a in result.attempts] == [("rejected", 400)]
    assert "start time must be before end time" in result.attempts[0].error


def test_missing_go_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMWATCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(pytest.fail.Exception) as failed:
        require_alertmanager()
    message = str(failed.value)
    assert "go not found" in message and "install Go" in message and "\n" not in message
