"""Alert lifecycle per (rule, key): pending -> firing -> resolved, with ``for`` and ``cooldown``.

Pure Python: observations in, :class:`Notification` objects out. The engine persists them, and
on restart rebuilds the firing alerts with :meth:`AlertStates.restore`.

>>> from streams.alerting.rules import Rule
>>> from streams.alerting.evaluate import Observation
>>> rule = Rule(name="errors", kind="error_rate", threshold=0.1, for_s=60, cooldown_s=3600)
>>> states = AlertStates()
>>> bad = [Observation(rule, {"service_name": "chat"}, 0.5, 0.1, True)]
>>> states.update(rule, bad, now=0), [n.status for n in states.update(rule, bad, now=60)]
([], ['firing'])
>>> states.update(rule, bad, now=120), [n.status for n in states.update(rule, [], now=180)]
([], ['resolved'])
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from streams.alerting.evaluate import Observation
from streams.alerting.rules import Rule

FIRING = "firing"
RESOLVED = "resolved"


def key_id(key: dict[str, str]) -> str:
    """Canonical text of a key: the same labels in any order give the same id."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def make_alert_id(rule: str, key: dict[str, str], started_at: float) -> str:
    """Deterministic id of one alert episode: hash(rule, key, started_at in ms)."""
    return _hash(rule, key_id(key), str(round(started_at * 1000)))


def idempotency_key(alert_id: str, status: str, repeat: int = 0) -> str:
    """hash(alert_id, status); cooldown re-notifications of a long firing alert add their number."""
    return _hash(alert_id, status) if repeat == 0 else _hash(alert_id, status, str(repeat))


@dataclass
class Notification:
    """One message about one alert episode, plus its delivery bookkeeping per channel.

    ``channel_status`` values: ``pending`` (to send), ``delivered`` (2xx seen: never resent),
    ``rejected`` (a 4xx other than 429: resending cannot help), ``expired`` (gave up).
    """

    notification_id: str
    alert_id: str
    rule: str
    kind: str
    severity: str
    status: str
    key: dict[str, str]
    labels: dict[str, str]
    value: float
    threshold: float
    started_at: float
    event_at: float
    summary: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    repeat: int = 0
    cooldown_s: float = 3600.0
    channel_status: dict[str, str] = field(default_factory=dict)
    channel_attempts: dict[str, int] = field(default_factory=dict)
    next_attempt_at: dict[str, float] = field(default_factory=dict)
    last_error: str = ""

    @property
    def pending_channels(self) -> list[str]:
        """Channels this notification still has to reach."""
        return [c for c, s in self.channel_status.items() if s == "pending"]

    @property
    def delivery_status(self) -> str:
        """``pending``, ``delivered``, ``partial``, ``failed`` or ``none`` (no channels)."""
        states = set(self.channel_status.values())
        if not states:
            return "none"
        if "pending" in states:
            return "pending"
        if states == {"delivered"}:
            return "delivered"
        return "partial" if "delivered" in states else "failed"


@dataclass
class AlertState:
    """What the engine remembers about one (rule, key) between ticks."""

    rule: str
    key: dict[str, str]
    pending_since: float
    firing: bool = False
    alert_id: str = ""
    last_notified_at: float = 0.0
    repeat: int = 0
    last: Observation | None = None


class AlertStates:
    """All open (pending or firing) alerts, keyed by (rule name, key id)."""

    def __init__(self) -> None:
        self._alerts: dict[tuple[str, str], AlertState] = {}

    def __len__(self) -> int:
        return len(self._alerts)

    def firing(self) -> list[AlertState]:
        """The alerts currently firing."""
        return [s for s in self._alerts.values() if s.firing]

    def restore(self, state: AlertState) -> None:
        """Re-open a firing alert read back from history (worker restart)."""
        self._alerts[(state.rule, key_id(state.key))] = state

    def update(self, rule: Rule, observations: Iterable[Observation], now: float) -> list[Notification]:
        """Apply one evaluation of ``rule``; keys absent from ``observations`` count as clear."""
        observations = list(observations)
        bad = {key_id(o.key): o for o in observations if o.firing}
        clear = {key_id(o.key): o for o in observations if not o.firing}
        out: list[Notification] = []
        for kid, obs in bad.items():
            state = self._alerts.setdefault((rule.name, kid), AlertState(rule.name, obs.key, pending_since=now))
            state.last = obs
            if not state.firing:
                if now - state.pending_since >= rule.for_s:
                    state.firing = True
                    state.alert_id = make_alert_id(rule.name, obs.key, state.pending_since)
                    state.last_notified_at = now
                    out.append(self._notification(rule, state, obs, FIRING, now))
            elif now - state.last_notified_at >= rule.cooldown_s:
                state.repeat += 1
                state.last_notified_at = now
                out.append(self._notification(rule, state, obs, FIRING, now))
        for (name, kid), state in list(self._alerts.items()):
            if name != rule.name or kid in bad:
                continue
            del self._alerts[(name, kid)]
            if state.firing:
                out.append(self._notification(rule, state, clear.get(kid, state.last), RESOLVED, now))
        return out

    @staticmethod
    def _notification(rule: Rule, state: AlertState, obs: Observation | None, status: str, now: float) -> Notification:
        repeat = state.repeat if status == FIRING else 0
        value = obs.value if obs is not None else 0.0
        threshold = obs.threshold if obs is not None else rule.threshold
        summary = obs.summary if obs is not None else f"{rule.name} ({key_id(state.key)})"
        if status == RESOLVED:
            summary = f"resolved: {summary}"
        return Notification(
            notification_id=idempotency_key(state.alert_id, status, repeat),
            alert_id=state.alert_id,
            rule=rule.name,
            kind=rule.kind,
            severity=rule.severity,
            status=status,
            key=dict(state.key),
            labels=dict(rule.labels),
            value=float(value),
            threshold=float(threshold),
            started_at=state.pending_since,
            event_at=now,
            summary=summary,
            description=rule.description,
            details=dict(obs.details) if obs is not None else {},
            repeat=repeat,
            cooldown_s=rule.cooldown_s,
            channel_status={c: "pending" for c in rule.deliveries},
            channel_attempts={c: 0 for c in rule.deliveries},
        )
