"""A worse prompt version rolled out by a label move fires the rollout-regression alert, naming
the rollback command; after the rollback, new calls are stored under the old version.

Real Kafka broker, real embedded ClickHouse, the real quality detector, real git registry, a
real local webhook receiver.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest

from streams.client.prompts import PromptClient
from streams.commands.prompts import rollback_command
from streams.devtools.generator import Generator
from streams.kafka.topics import ensure_topics
from tests.streams.alerting.test_delivery import SECRET, Receiver
from tests.streams.devtools.test_prompt_traffic import copy_registry
from tests.streams.worker_harness import WorkerProcess, produce, query, unique_settings

ROLLBACK = "llmwatch prompts rollback support_agent --label production"


@pytest.fixture
def settings(kafka_bootstrap, tmp_path):
    s = unique_settings(kafka_bootstrap, tmp_path, batch_size=500, detect_batch_size=128, alert_interval_s=2.0,
                        detectors="quality", results_topic="")
    ensure_topics(s)
    return s


def test_worse_version_fires_the_rollout_alert_and_rollback_brings_the_old_version_back(settings, tmp_path):
    root, old, new = copy_registry(tmp_path)
    receiver = Receiver().start()
    rules = tmp_path / "alerts.yaml"
    rules.write_text(f"""
channels:
  hook: {{type: webhook, url: "{receiver.url}/hook", secret: "{SECRET}", timeout: 2s, max_retries: 2, backoff: 100ms}}
rules:
  - name: prompt-rollout
    kind: rollout_regression
    window: 1h
    min_events: 30
    margins: {{quality_rate: {{absolute: 0.05}}, flagged_rate: off, error_rate: off, latency_p95: off, mean_cost: off}}
    deliveries: [hook]
""")
    settings = dataclasses.replace(settings, alert_rules=str(rules))
    client = PromptClient(root, ttl_s=0)
    # 1,300 calls over the last ten minutes (2.5/s): the label move is replayed after 200
    gen = Generator(seed=21, rate=2.5, start_ms=int(time.time() * 1000) - 600_000, drift_after=None,
                    prompts=client, rollout_after=200)
    first = [m for m in gen.messages(1000, malformed_ratio=0.0) if m.valid]
    worker = WorkerProcess(settings).start()
    try:
        asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, [(m.key, m.value) for m in first]))
        worker.wait_caught_up(timeout=600)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.5)
        rollback_command("support_agent", "production", root=root)
        after = [m for m in gen.messages(300, malformed_ratio=0.0) if m.valid]
        asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, [(m.key, m.value) for m in after]))
        worker.wait_caught_up(timeout=600)
        assert worker.alive(), worker.log_text()[-3000:]
    finally:
        worker.stop()
        receiver.stop()

    assert receiver.requests, f"no alert delivered; worker log:\n{worker.log_text()[-3000:]}"
    alert = receiver.requests[0]
    assert alert.signature_ok and alert.payload["rule"] == "prompt-rollout" and alert.payload["status"] == "firing"
    body = json.dumps(alert.payload)
    assert ROLLBACK in body and new in body and old in body and "refusal" in body
    # After the rollback every new support call was stored under the old version, with its label.
    stored = query(settings, "SELECT event_id, prompt_version, attributes['gen_ai.prompt.label'] FROM llm_calls FINAL "
                             "WHERE service_name = 'support-bot' ORDER BY timestamp DESC LIMIT 80")
    assert stored and {v for _, v, _ in stored} == {old} and {label for *_, label in stored} == {"production"}
