"""The engine end to end: chDB data -> state -> history -> a real signed-webhook receiver."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from streams.alerting import AlertEngine, AlertRules
from streams.alerting.evaluate import Observation
from streams.alerting.rules import Rule
from streams.alerting.state import AlertStates, idempotency_key, make_alert_id
from streams.storage.clickhouse import connect, migrate
from tests.streams.alerting.test_delivery import SECRET, Receiver

NOW = float(int(time.time()))
EVENT_IDS = [f"evt-{i}" for i in range(20)]


def rules_yaml(url: str, *, for_: str = "0s", cooldown: str = "1h") -> AlertRules:
    return AlertRules.parse(f"""
channels:
  hook:
    type: webhook
    url: {url}/hook
    secret: {SECRET}
    max_retries: 2
    backoff: 1ms
rules:
  - name: errors
    kind: error_rate
    window: 1h
    threshold: 0.1
    group_by: [service_name]
    for: {for_}
    cooldown: {cooldown}
    deliveries: [hook]
""")


def set_error_calls(client: Any, errors: int) -> None:
    """The same 20 event ids each time: ReplacingMergeTree keeps the newest (read with FINAL)."""
    ts = datetime.fromtimestamp(NOW - 60, timezone.utc)
    rows = [[eid, ts, "chat", "gpt-x", "v1", 100.0, "error" if i < errors else "ok"] for i, eid in enumerate(EVENT_IDS)]
    client.insert("llm_calls", rows, column_names=["event_id", "timestamp", "service_name", "request_model",
                                                  "prompt_version", "latency_ms", "status"])


class Db:
    """One chDB folder; ``reopen()`` closes and opens it again, like a worker restart."""

    def __init__(self, path: Path):
        self.path = path
        self.client = connect(f"chdb://{path}")
        migrate(self.client, rollup_ttl_days=30)  # 0003 (rollups) needs it until migrate() defaults it

    def reopen(self) -> Any:
        self.client.close()
        self.client = connect(f"chdb://{self.path}")
        return self.client

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.client.query(sql).result_rows


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    database = Db(tmp_path / "ch")
    yield database
    database.client.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def engine(rules: AlertRules, client: Any) -> AlertEngine:
    return AlertEngine(rules, client, clock=lambda: NOW, http=httpx.Client(timeout=2.0), sleep=lambda s: None)


def test_dedup_cooldown_and_one_resolved(db: Db, receiver: Receiver) -> None:
    set_error_calls(db.client, errors=10)
    eng = engine(rules_yaml(receiver.url, cooldown="10m"), db.client)
    first = eng.tick(NOW)
    assert [n.status for n in first.notifications] == ["firing"] and first.queued == 0
    assert eng.tick(NOW + 60).notifications == []  # still firing, inside the cooldown
    repeat = eng.tick(NOW + 601).notifications  # cooldown passed: one reminder, a new idempotency key
    assert [(n.status, n.repeat) for n in repeat] == [("firing", 1)]
    set_error_calls(db.client, errors=0)
    resolved = eng.tick(NOW + 660).notifications
    assert [n.status for n in resolved] == ["resolved"] and resolved[0].alert_id == first.notifications[0].alert_id
    assert eng.tick(NOW + 720).notifications == []
    assert [r.payload["status"] for r in receiver.requests] == ["firing", "firing", "resolved"]
    assert all(r.signature_ok for r in receiver.requests)
    assert len(set(receiver.idempotency_keys())) == 3
    history = db.rows("SELECT status, delivery_status, delivered_channels FROM alerts FINAL ORDER BY event_at")
    assert history == [("firing", "delivered", ["hook"])] * 2 + [("resolved", "delivered", ["hook"])]


def test_for_keeps_a_short_spike_pending(db: Db, receiver: Receiver) -> None:
    set_error_calls(db.client, errors=10)
    eng = engine(rules_yaml(receiver.url, for_="2m"), db.client)
    assert eng.tick(NOW).notifications == [] and eng.tick(NOW + 60).notifications == []
    assert [n.status for n in eng.tick(NOW + 120).notifications] == ["firing"]
    assert receiver.requests[0].payload["started_at"] < receiver.requests[0].payload["event_at"]


def test_receiver_down_then_up_delivers_exactly_once(db: Db) -> None:
    receiver = Receiver().start()
    receiver.stop()  # port closed: connection refused
    set_error_calls(db.client, errors=10)
    eng = engine(rules_yaml(receiver.url), db.client)
    down = eng.tick(NOW)
    assert [a.outcome for a in down.attempts] == ["retry"] * 3 and down.queued == 1
    assert eng.tick(NOW + 30).queued == 1
    receiver.start()  # same port, back up
    try:
        up = eng.tick(NOW + 60)
        assert [a.outcome for a in up.attempts] == ["delivered"] and up.queued == 0
        assert eng.tick(NOW + 90).attempts == []
        assert len(receiver.requests) == 1 and receiver.requests[0].signature_ok
    finally:
        receiver.stop()
    (nid,) = {n.notification_id for n in down.notifications}
    assert receiver.idempotency_keys() == [nid]
    outcomes = db.rows("SELECT attempt, outcome FROM alert_deliveries FINAL ORDER BY attempt")
    assert outcomes == [(1, "retry"), (2, "retry"), (3, "retry"), (4, "retry"), (5, "retry"), (6, "retry"),
                        (7, "delivered")]
    assert db.rows("SELECT delivery_status, attempts, status FROM alerts FINAL") == [("delivered", 7, "firing")]


def test_restart_does_not_renotify_and_still_resolves(db: Db, receiver: Receiver) -> None:
    set_error_calls(db.client, errors=10)
    first = engine(rules_yaml(receiver.url), db.client)
    (fired,) = first.tick(NOW).notifications
    restarted = engine(rules_yaml(receiver.url), db.reopen())
    assert restarted.tick(NOW + 60).notifications == [] and len(receiver.requests) == 1
    set_error_calls(db.client, errors=0)
    (resolved,) = restarted.tick(NOW + 120).notifications
    assert (resolved.status, resolved.alert_id) == ("resolved", fired.alert_id)
    assert [r.payload["status"] for r in receiver.requests] == ["firing", "resolved"]


def test_restart_resumes_undelivered_notifications(db: Db) -> None:
    receiver = Receiver().start()
    receiver.stop()
    set_error_calls(db.client, errors=10)
    assert engine(rules_yaml(receiver.url), db.client).tick(NOW).queued == 1
    receiver.start()
    try:
        result = engine(rules_yaml(receiver.url), db.reopen()).tick(NOW + 60)
        assert result.notifications == [] and [a.outcome for a in result.attempts] == ["delivered"]
        assert [a.attempt for a in result.attempts] == [4]  # numbering continues from history
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()


def test_a_broken_rule_does_not_stop_the_others(db: Db, receiver: Receiver) -> None:
    set_error_calls(db.client, errors=10)
    rules = rules_yaml(receiver.url)
    db.client.command("DROP TABLE detections")
    broken = AlertRules.parse("rules:\n  - {name: inj, kind: flagged_rate, detector: injection, threshold: 0.1}\n")
    merged = AlertRules(broken.rules + rules.rules, rules.channels)
    result = engine(merged, db.client).tick(NOW)
    assert len(result.errors) == 1 and result.errors[0].startswith("rule 'inj': evaluation failed")
    assert [n.rule for n in result.notifications] == ["errors"]


def test_ids_are_deterministic() -> None:
    key = {"service_name": "chat", "request_model": "m"}
    assert make_alert_id("r", key, 10.0) == make_alert_id("r", dict(reversed(key.items())), 10.0)
    assert make_alert_id("r", key, 10.0) != make_alert_id("r", key, 11.0)
    assert idempotency_key("a", "firing") != idempotency_key("a", "resolved") != idempotency_key("a", "firing", 1)


def test_absent_key_resolves_and_flapping_inside_for_never_fires() -> None:
    rule = Rule(name="r", kind="error_rate", threshold=0.1, for_s=60, deliveries=("hook",))
    states = AlertStates()
    bad = [Observation(rule, {"s": "a"}, 0.5, 0.1, True)]
    assert states.update(rule, bad, 0) == [] and states.update(rule, [], 30) == []
    assert states.update(rule, bad, 40) == [] and states.update(rule, bad, 90) == []  # pending restarted at 40
    (fired,) = states.update(rule, bad, 100)
    assert fired.started_at == 40 and fired.channel_status == {"hook": "pending"}
    (resolved,) = states.update(rule, [], 200)
    assert resolved.status == "resolved" and len(states) == 0


def test_a_reminder_restarts_the_cooldown() -> None:
    """After a reminder the next one waits a whole cooldown again, not one tick."""
    rule = Rule(name="r", kind="error_rate", threshold=0.1, for_s=0, cooldown_s=600, deliveries=("hook",))
    states = AlertStates()
    bad = [Observation(rule, {"s": "a"}, 0.5, 0.1, True)]
    assert [n.repeat for n in states.update(rule, bad, 0)] == [0]
    assert states.update(rule, bad, 300) == []
    assert [n.repeat for n in states.update(rule, bad, 601)] == [1]
    assert states.update(rule, bad, 660) == [] and states.update(rule, bad, 1000) == []
    assert [n.repeat for n in states.update(rule, bad, 1202)] == [2]
