"""The ``alerts`` and ``alert_deliveries`` tables: write notifications and attempts, read back state.

Tables come from ``schemas/ch_0004_alerts.sql`` (run ``streams.storage.clickhouse.migrate`` first).
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from typing import Any, Iterable

from clickhouse_connect.driver.client import Client

from streams.alerting.delivery import Attempt
from streams.alerting.state import FIRING, AlertState, Notification

ALERT_COLUMNS = [
    "notification_id", "alert_id", "rule", "kind", "severity", "status", "key", "labels", "value",
    "threshold", "summary", "details", "started_at", "event_at", "repeat", "channels",
    "delivered_channels", "channel_status", "channel_attempts", "attempts", "delivery_status",
    "last_error", "revision",
]
ATTEMPT_COLUMNS = [
    "notification_id", "alert_id", "rule", "channel", "attempt", "attempted_at", "outcome",
    "http_status", "error", "duration_ms",
]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class AlertHistory:
    """Reads and writes alert history through one clickhouse-connect client."""

    def __init__(self, client: Client):
        self.client = client
        self._revision = 0
        self._lock = threading.Lock()

    def _next_revision(self) -> int:
        # Wall-clock nanoseconds, forced monotonic: a later write must win even if two writes share
        # a millisecond or the engine runs on a fake clock (tests) or after a restart.
        with self._lock:
            self._revision = max(self._revision + 1, time.time_ns())
            return self._revision

    def write(self, notifications: Iterable[Notification]) -> None:
        """Insert (or replace) the rows of these notifications with their delivery status."""
        rows = [self._row(n) for n in notifications]
        if rows:
            self.client.insert("alerts", rows, column_names=ALERT_COLUMNS)

    def _row(self, n: Notification) -> list[Any]:
        return [
            n.notification_id, n.alert_id, n.rule, n.kind, n.severity, n.status, n.key, n.labels,
            float(n.value), float(n.threshold), n.summary, json.dumps(n.details, default=str, sort_keys=True),
            _dt(n.started_at), _dt(n.event_at), n.repeat, list(n.channel_status),
            [c for c, s in n.channel_status.items() if s == "delivered"],
            n.channel_status, n.channel_attempts, sum(n.channel_attempts.values()), n.delivery_status,
            n.last_error, self._next_revision(),
        ]

    def record_attempts(self, attempts: Iterable[Attempt]) -> None:
        """Append delivery attempts."""
        rows = [[a.notification_id, a.alert_id, a.rule, a.channel, a.attempt, _dt(a.attempted_at), a.outcome,
                 a.http_status, a.error, a.duration_ms] for a in attempts]
        if rows:
            self.client.insert("alert_deliveries", rows, column_names=ATTEMPT_COLUMNS)

    def open_alerts(self) -> list[AlertState]:
        """Alerts with a firing notification and no resolved one: the state to resume after a restart."""
        result = self.client.query(
            "SELECT alert_id, any(rule) AS rule, any(key) AS key, "
            "toUnixTimestamp64Milli(min(started_at)) AS started_ms, "
            "toUnixTimestamp64Milli(max(event_at)) AS notified_ms, max(repeat) AS repeat "
            "FROM alerts FINAL GROUP BY alert_id "
            "HAVING countIf(status = {resolved:String}) = 0 AND countIf(status = {firing:String}) > 0 "
            "ORDER BY started_ms",
            parameters={"resolved": "resolved", "firing": FIRING},
        )
        return [
            AlertState(rule=rule, key=dict(key), pending_since=started / 1000.0, firing=True, alert_id=alert_id,
                       last_notified_at=notified / 1000.0, repeat=int(repeat))
            for alert_id, rule, key, started, notified, repeat in result.result_rows
        ]

    def undelivered(self) -> list[Notification]:
        """Notifications with a channel still ``pending``, oldest first (the delivery queue)."""
        result = self.client.query(
            "SELECT notification_id, alert_id, rule, kind, severity, status, key, labels, value, threshold, "
            "summary, details, toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(event_at), repeat, "
            "channel_status, channel_attempts, last_error "
            "FROM alerts FINAL WHERE delivery_status = {pending:String} ORDER BY event_at, notification_id",
            parameters={"pending": "pending"},
        )
        out = []
        for row in result.result_rows:
            (nid, alert_id, rule, kind, severity, status, key, labels, value, threshold, summary, details,
             started_ms, event_ms, repeat, channel_status, channel_attempts, last_error) = row
            out.append(Notification(
                notification_id=nid, alert_id=alert_id, rule=rule, kind=kind, severity=severity, status=status,
                key=dict(key), labels=dict(labels), value=value, threshold=threshold, summary=summary,
                details=json.loads(details or "{}"), started_at=started_ms / 1000.0, event_at=event_ms / 1000.0,
                repeat=int(repeat), channel_status=dict(channel_status),
                channel_attempts={c: int(v) for c, v in channel_attempts.items()}, last_error=last_error,
            ))
        return out
