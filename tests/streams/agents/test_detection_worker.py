"""Live detection end to end: generator traffic -> worker (all agents) -> ClickHouse and webhooks.

Real Kafka broker, real embedded ClickHouse, real detectors, a real local webhook receiver.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter

import httpx
import pytest
from aiokafka.errors import KafkaError

from streams.pipeline.codec import EventCodec
from streams.pipeline.detection import Positioned
from streams.devtools.generator import Generator
from streams.devtools.kafka_local import free_port
from streams.kafka.lag import consumer_lag
from streams.pipeline.redaction import Redactor
from streams.pipeline.runners import grounding_runner, injection_runner, quality_runner
from streams.kafka.reader import read_topic
from streams.kafka.topics import ensure_topics
from tests.streams.alerting.test_delivery import SECRET, Receiver
from tests.streams.worker_harness import WorkerProcess, produce, query, unique_settings

N_EVENTS = 1400
DRIFT_AFTER = 500


def traffic(n: int, seed: int = 11) -> list:
    now = int(time.time() * 1000)
    gen = Generator(seed=seed, drift_after=DRIFT_AFTER, injection_ratio=0.05, ungrounded_ratio=0.2)
    return list(gen.messages(n, malformed_ratio=0.02, json_ratio=0.2, clock_ms=lambda: now))


@pytest.fixture
def settings(kafka_bootstrap, tmp_path):
    s = unique_settings(
        kafka_bootstrap, tmp_path, batch_size=500, detect_batch_size=128, results_topic=f"results-{tmp_path.name}",
        drift_reference_size=60, drift_window_size=30, drift_report_interval_s=2.0, alert_interval_s=2.0,
        canaries="support-bot=CANARY-7f3a9c", detectors="injection,grounding,drift,quality",
    )
    ensure_topics(s)
    return s


def positions_by_event(settings) -> dict[str, tuple[int, int]]:
    rows = query(settings, "SELECT event_id, kafka_partition, kafka_offset FROM llm_calls FINAL")
    return {e: (p, o) for e, p, o in rows}


def pure_verdicts(settings, messages, positions) -> dict[tuple[str, str], tuple[float, int, str]]:
    """What the pure detectors say about the same events, in each partition's order."""
    codec = EventCodec()
    batch = []
    for m in messages:
        if not m.valid:
            continue
        record = codec.decode(m.value).record
        p, o = positions[record["event_id"]]
        batch.append(Positioned(record, p, o))
    batch.sort(key=lambda x: (x.partition, x.offset))
    redactor = Redactor.from_names(settings.redact)
    out = {}
    for runner in (injection_runner(settings, redactor), grounding_runner(settings, redactor),
                   quality_runner(settings, redactor)):
        for event_id, v in runner.run(batch).verdicts:
            out[(event_id, v.detector)] = (round(v.score, 4), int(v.flagged), v.label)
    return out


def test_detections_match_pure_detectors_and_drift_alert_reaches_receiver(settings, tmp_path):
    receiver = Receiver().start()
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        f"""
channels:
  hook: {{type: webhook, url: "{receiver.url}/hook", secret: "{SECRET}", timeout: 2s, max_retries: 2, backoff: 100ms}}
rules:
  - {{name: drift, kind: drift, window: 1h, for: 0s, cooldown: 1h, deliveries: [hook]}}
"""
    )
    settings = dataclasses.replace(settings, alert_rules=str(rules), web_port=free_port())
    messages = traffic(N_EVENTS)
    pii = EventCodec.encode_json({
        "event_id": "pii-1", "timestamp_ms": int(time.time() * 1000), "service_name": "support-bot",
        "request_model": "gpt-4o-mini", "prompt_version": "v1",
        "input_messages": [{"role": "user", "content": "I am jane@example.com, card 4111 1111 1111 1111"}],
        "output_text": "Thanks, reach me on 415-555-0132.",
    })
    worker = WorkerProcess(settings).start()
    try:
        asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, [(m.key, m.value) for m in messages] + [(b"support-bot", pii)]))
        worker.wait_caught_up(timeout=600)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.5)
        assert worker.alive(), worker.log_text()[-3000:]
        results = asyncio.run(read_topic(settings.kafka_bootstrap, settings.results_topic, timeout_s=10))
        health = httpx.get(f"http://127.0.0.1:{settings.web_port}/healthz", timeout=10)
        metrics = httpx.get(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=10).text
    finally:
        worker.stop()
        receiver.stop()

    # The drift phase raised a drift alert, delivered signed to the receiver.
    assert receiver.requests, f"no alert delivered; worker log:\n{worker.log_text()[-3000:]}"
    first = receiver.requests[0]
    assert first.signature_ok and first.path == "/hook"
    assert first.payload["rule"] == "drift" and first.payload["status"] == "firing"
    drifted = query(settings, "SELECT service_name, request_model, prompt_version FROM drift_reports FINAL WHERE drifted = 1")
    assert ("support-bot", "gpt-4o-mini", "v2") in set(drifted)

    # Observability: health and Prometheus metrics while it ran.
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["loading"] == []
    for name in ("llmwatch_events_total", "llmwatch_consumer_lag", "llmwatch_detector_event_seconds_bucket",
                 "llmwatch_dead_letters_total", "llmwatch_alert_delivery_attempts_total"):
        assert name in metrics, name
    assert 'llmwatch_events_total{agent="detect_grounding"}' in metrics

    # PII was redacted before storage.
    stored_pii = query(settings, "SELECT input_contents, output_text FROM llm_calls FINAL WHERE event_id = 'pii-1'")
    assert stored_pii == [(["I am [EMAIL], card [CARD]"], "Thanks, reach me on [PHONE].")]

    # Every stored verdict equals what the pure detectors say about the same event.
    stored = {
        (e, d): (round(s, 4), f, label)
        for e, d, s, f, label in query(
            settings, "SELECT event_id, detector, score, flagged, label FROM detections FINAL WHERE detector != 'drift'"
        )
    }
    expected = pure_verdicts(settings, messages, positions_by_event(settings))
    stored = {k: v for k, v in stored.items() if k[0] != "pii-1"}
    assert stored.keys() == expected.keys()
    mismatched = [k for k in expected if abs(stored[k][0] - expected[k][0]) > 1e-3 or stored[k][1:] != expected[k][1:]]
    assert not mismatched, mismatched[:5]

    # Planted attacks and ungrounded answers are what got flagged, mostly.
    planted = {m.event["event_id"]: m.event["attributes"]["llmwatch.planted"] for m in messages if m.valid}
    flagged = Counter((d, planted[e]) for (e, d), (_, f, _) in stored.items() if f)
    assert flagged[("injection", "injection")] >= 0.8 * sum(1 for p in planted.values() if p == "injection")
    assert flagged[("grounding", "ungrounded")] >= 0.8 * sum(
        1 for (e, d) in stored if d == "grounding" and planted[e] == "ungrounded"
    )
    # Every answered call has its quality checks, one row per check (the quality_scores view).
    answered = {e for e, d in expected if d == "quality"}  # calls with a response
    assert len(answered) > 0.9 * len(positions_by_event(settings)) - 1
    checks = query(settings, "SELECT event_id, groupArray(metric) FROM quality_scores FINAL GROUP BY event_id")
    assert {e for e, _ in checks} - {"pii-1"} == answered
    assert all({"refusal", "relevance", "truncation", "degenerate", "language", "pii"} <= set(m) for _, m in checks)
    # Results topic carries one Confluent-Avro message per stored verdict (at least once).
    assert len(results) >= len(stored)
    assert all(r.value[:1] == b"\x00" for r in results)


def test_sigkill_mid_detection_loses_no_detection_and_counts_none_twice(settings):
    settings = dataclasses.replace(settings, detectors="injection,grounding", batch_size=100, detect_batch_size=50)
    messages = traffic(900, seed=12)
    valid = sum(1 for m in messages if m.valid)
    asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, [(m.key, m.value) for m in messages]))
    worker = WorkerProcess(settings).start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            lag = sum(asyncio.run(consumer_lag(settings.kafka_bootstrap, settings.calls_groups, [settings.calls_topic])).values())
        except KafkaError:
            lag = None
        if lag is not None and 0 < lag < len(messages):
            break
        time.sleep(0.2)
    worker.kill()
    worker.run_until_caught_up(timeout=600)
    total, unique = query(settings, "SELECT count(), uniqExact(event_id, detector) FROM detections")[0]
    assert total == unique  # nothing inserted twice, not even before merges
    per_detector = dict(query(settings, "SELECT detector, count() FROM detections GROUP BY detector"))
    assert per_detector["injection"] == valid  # every valid event checked once
    rag = query(
        settings,
        "SELECT count() FROM llm_calls FINAL WHERE length(retrieved_context) > 0 AND output_text != ''",
    )[0][0]
    assert per_detector["grounding"] == rag
    # the rollups agree with the table after the replay (a kill between the table's part and
    # the views' parts is repaired from the table)
    assert dict(query(settings, "SELECT detector, sum(checks) FROM detections_1m GROUP BY detector")) == per_detector
    assert query(settings, "SELECT sum(calls) FROM llm_calls_1m") == query(settings, "SELECT count() FROM llm_calls FINAL")
