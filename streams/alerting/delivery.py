"""Payloads (generic webhook, Slack, Alertmanager), HMAC signing and HTTP delivery with retries.

Every request carries ``Content-Type: application/json``, ``Idempotency-Key`` (stable across
retries and restarts), ``X-LLMWatch-Timestamp`` and, when the channel has a secret,
``X-LLMWatch-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``. A receiver checks::

    expected = sign(secret, request_body)
    hmac.compare_digest(expected, request.headers["X-LLMWatch-Signature"])

>>> signature = sign("s3cret", b'{"a":1}')
>>> signature.startswith("sha256="), verify("s3cret", b'{"a":1}', signature), verify("s3cret", b'{"a":2}', signature)
(True, True, False)
"""
from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import httpx

from streams.alerting.rules import Channel
from streams.alerting.state import RESOLVED, Notification

SIGNATURE_HEADER = "X-LLMWatch-Signature"
TIMESTAMP_HEADER = "X-LLMWatch-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ALERTMANAGER_PATH = "/api/v2/alerts"
# Alertmanager resolves a firing alert at endsAt; we re-send after each cooldown, so keep it
# valid a little past the next re-send.
ALERTMANAGER_GRACE_S = 600.0


def sign(secret: str | bytes, body: bytes) -> str:
    """``sha256=<hex>`` HMAC-SHA256 of ``body`` under ``secret``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, signature: str | None) -> bool:
    """A receiver's check of :data:`SIGNATURE_HEADER` (constant-time)."""
    return signature is not None and hmac.compare_digest(sign(secret, body), signature)


def iso(ts: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2024-01-01T00:00:00.000Z``."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_payload(n: Notification, generator_url: str = "") -> dict[str, Any]:
    """The generic JSON body: every field of the notification."""
    return {
        "version": 1,
        "source": "llmwatch",
        "idempotency_key": n.notification_id,
        "alert_id": n.alert_id,
        "status": n.status,
        "rule": n.rule,
        "kind": n.kind,
        "severity": n.severity,
        "key": n.key,
        "labels": n.labels,
        "value": n.value,
        "threshold": n.threshold,
        "summary": n.summary,
        "description": n.description,
        "started_at": iso(n.started_at),
        "event_at": iso(n.event_at),
        "ended_at": iso(n.event_at) if n.status == RESOLVED else None,
        "repeat": n.repeat,
        "details": n.details,
        "generator_url": generator_url or None,
    }


def slack_payload(n: Notification, generator_url: str = "") -> dict[str, Any]:
    """Slack incoming-webhook body: ``text`` (fallback/notification) plus Block Kit ``blocks``."""
    title = f"[{n.status.upper()}] {n.rule} ({n.severity})"
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in n.key.items()]
    fields += [{"type": "mrkdwn", "text": f"*value*\n{n.value:.4g}"},
               {"type": "mrkdwn", "text": f"*threshold*\n{n.threshold:.4g}"}]
    context = f"alert `{n.alert_id}` · started {iso(n.started_at)}"
    if n.status == RESOLVED:
        context += f" · resolved {iso(n.event_at)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (n.summary + ("\n" + n.description if n.description else ""))[:3000]}},
        {"type": "section", "fields": fields[:10]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    ]
    if generator_url:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open dashboard"}, "url": generator_url}]})
    return {"text": f"{title}: {n.summary}", "blocks": blocks}


def _label_name(name: str) -> str:
    clean = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


def alertmanager_payload(n: Notification, generator_url: str = "") -> list[dict[str, Any]]:
    """Alertmanager ``POST /api/v2/alerts`` body: a list with one alert."""
    labels = {"alertname": n.rule, "severity": n.severity, "llmwatch_kind": n.kind}
    labels |= {_label_name(k): v for k, v in {**n.key, **n.labels}.items()}
    ends = n.event_at if n.status == RESOLVED else n.event_at + n.cooldown_s + ALERTMANAGER_GRACE_S
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": n.summary,
            "description": n.description or n.summary,
            "value": f"{n.value:.6g}",
            "threshold": f"{n.threshold:.6g}",
            "alert_id": n.alert_id,
        },
        "startsAt": iso(n.started_at),
        "endsAt": iso(ends),
    }
    if generator_url:
        alert["generatorURL"] = generator_url
    return [alert]


_PAYLOADS: dict[str, Callable[[Notification, str], Any]] = {
    "webhook": webhook_payload,
    "slack": slack_payload,
    "alertmanager": alertmanager_payload,
}


def render(channel: Channel, n: Notification, generator_url: str = "") -> tuple[str, bytes]:
    """``(url, body bytes)`` for one channel; the same notification always gives the same bytes."""
    body = json.dumps(_PAYLOADS[channel.type](n, generator_url), sort_keys=True,
                      separators=(",", ":"), default=str).encode()
    url = channel.url
    if channel.type == "alertmanager" and not url.rstrip("/").endswith(ALERTMANAGER_PATH):
        url = url.rstrip("/") + ALERTMANAGER_PATH
    return url, body


def headers(channel: Channel, n: Notification, body: bytes, now: float) -> dict[str, str]:
    """The request headers for one attempt."""
    out = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: n.notification_id,
        TIMESTAMP_HEADER: str(int(now)),
        "User-Agent": "llmwatch-alerting/1",
    }
    if channel.secret:
        out[SIGNATURE_HEADER] = sign(channel.secret, body)
    return out


@dataclass(frozen=True)
class Attempt:
    """One HTTP try. ``outcome``: ``delivered`` (2xx), ``retry`` (network/5xx/429), ``rejected`` (other)."""

    notification_id: str
    alert_id: str
    rule: str
    channel: str
    attempt: int
    attempted_at: float
    outcome: str
    http_status: int = 0
    error: str = ""
    duration_ms: float = 0.0


@dataclass
class SendResult:
    """All tries of one :func:`send` call and where the notification stands for that channel."""

    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    rejected: bool = False
    retry_at: float | None = None  # earliest time worth trying again (Retry-After), if any


def retry_after(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - now) if parsed is not None else None


def backoff(channel: Channel, retry: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full-range jitter: base * 2**retry * [0.5, 1.5), capped."""
    return min(channel.max_backoff_s, channel.backoff_s * (2 ** retry) * (0.5 + rng()))


def send(
    channel: Channel,
    n: Notification,
    http: httpx.Client,
    *,
    generator_url: str = "",
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    first_attempt: int = 1,
) -> SendResult:
    """POST ``n`` to ``channel`` with up to ``channel.max_retries`` retries.

    Retries on connection errors, timeouts, 5xx and 429 (honouring ``Retry-After``); stops at the
    first 2xx or at another status (``rejected``). A wait longer than ``max_backoff`` is not slept
    here: the result's ``retry_at`` tells the engine to try again on a later tick.
    """
    url, body = render(channel, n, generator_url)
    result = SendResult()
    for retry in range(channel.max_retries + 1):
        started = clock()
        status, error, wait = 0, "", None
        try:
            response = http.post(url, content=body, headers=headers(channel, n, body, started), timeout=channel.timeout_s)
            status = response.status_code
            if 200 <= status < 300:
                outcome = "delivered"
            elif status == 429 or status >= 500:
                outcome, error, wait = "retry", f"HTTP {status}", retry_after(response, started)
            else:
                outcome, error = "rejected", f"HTTP {status}: {response.text[:200]}"
        except httpx.HTTPError as exc:  # connection refused, DNS, timeouts, protocol errors
            outcome, error = "retry", f"{type(exc).__name__}: {exc}"[:300]
        result.attempts.append(Attempt(n.notification_id, n.alert_id, n.rule, channel.name, first_attempt + retry,
                                       started, outcome, status, error, (clock() - started) * 1000.0))
        if outcome == "delivered":
            result.delivered = True
            return result
        if outcome == "rejected":
            result.rejected = True
            return result
        delay = backoff(channel, retry) if wait is None else wait
        if retry == channel.max_retries or delay > channel.max_backoff_s:
            result.retry_at = clock() + delay if wait is not None else None
            return result
        sleep(delay)
    return result
