"""Scale-out on the real broker and engine: three detect workers in one group and one store.

One detect worker is SIGKILLed mid-stream, the one whose partition holds the drifting key, so
that key's drift state must move to another worker through the changelog. Afterwards every
event has exactly one verdict per detector, and drift raised exactly the alarms a single
detector fed every event once, in order, raises: nothing was lost or counted twice.
"""
from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from pathlib import Path

import pytest

from streams.config import Settings
from streams.devtools.generator import DEFAULT_DRIFT_KEY
from streams.kafka.lag import consumer_lag, wait_caught_up
from streams.kafka.topics import ensure_topics
from streams.pipeline.codec import EventCodec
from streams.pipeline.detection import Positioned
from streams.pipeline.drift_state import app_partition
from streams.pipeline.redaction import Redactor
from streams.pipeline.runners import drift_runner
from tests.streams.agents.test_detection_worker import traffic
from tests.streams.worker_harness import WorkerProcess, produce, query, unique_settings

N_EVENTS = 1000
DETECT_WORKERS = 3


@pytest.fixture
def settings(kafka_bootstrap, tmp_path):
    s = unique_settings(
        kafka_bootstrap, tmp_path / "store", batch_size=500, detect_batch_size=64, detectors="injection,drift",
        results_topic=f"results-{tmp_path.name}", drift_reports_topic=f"drift-{tmp_path.name}",
        drift_reference_size=60, drift_window_size=30, drift_report_interval_s=2.0,
    )
    ensure_topics(dataclasses.replace(s, role="detect"))
    return s


def detect_lag(s: Settings) -> int | None:
    try:
        return sum(asyncio.run(consumer_lag(s.kafka_bootstrap, s.calls_groups, [s.calls_topic])).values())
    except Exception:
        return None


def owner_of(workers: list[WorkerProcess], partition: int, timeout_s: float = 240) -> WorkerProcess:
    """The detect worker whose drift rebuild took ``partition`` last (a worker that lost it
    logs nothing until its next batch, so its older line may still name it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        latest: list[tuple[str, WorkerProcess]] = []
        for w in workers:
            w.check_alive()
            found = re.findall(r"^\[([\d\- :,]+)\].*drift: partitions \[([\d, ]*)\]", w.log_text(), re.M)
            if found and str(partition) in found[-1][1].replace(" ", "").split(","):
                latest.append((found[-1][0], w))
        if latest:
            return max(latest, key=lambda sw: sw[0])[1]
        time.sleep(0.5)
    raise TimeoutError(f"no detect worker took partition {partition}")


def expected_drift_alarms(settings: Settings, messages: list, positions: dict[str, tuple[int, int]]) -> set[str]:
    """Event ids a single drift detector flags when fed every event once, in partition order."""
    codec = EventCodec()
    batch = []
    for m in messages:
        if m.valid:
            record = codec.decode(m.value).record
            batch.append(Positioned(record, *positions[record["event_id"]]))
    batch.sort(key=lambda p: (p.partition, p.offset))
    runner = drift_runner(settings, Redactor.from_names(settings.redact))
    return {event_id for event_id, v in runner.run(batch).verdicts if v.flagged}


def test_three_detect_workers_one_killed_give_one_verdict_each_and_exact_drift(settings, tmp_path: Path):
    messages = traffic(N_EVENTS, seed=21)
    valid = sum(1 for m in messages if m.valid)
    store = WorkerProcess(dataclasses.replace(settings, role="store")).start()
    detect_settings = [dataclasses.replace(settings, role="detect", home=str(tmp_path / f"detect-{i}")) for i in range(DETECT_WORKERS)]
    workers = [WorkerProcess(s).start() for s in detect_settings]
    d = detect_settings[0]
    try:
        asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, [(m.key, m.value) for m in messages]))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # kill with work done and work left
            lag = detect_lag(d)
            if lag is not None and lag < len(messages) * 0.6:
                break
            time.sleep(0.2)
        assert lag is not None and 0 < lag < len(messages), f"the kill should land mid-stream (lag {lag})"
        victim = owner_of(workers, app_partition(DEFAULT_DRIFT_KEY[0], settings.topic_partitions))
        victim.kill()
        survivors = [w for w in workers if w is not victim]
        assert asyncio.run(
            wait_caught_up(d.kafka_bootstrap, d.calls_groups, [d.calls_topic], 600, keep_waiting=lambda: all(w.alive() for w in survivors))
        ), "the surviving detect workers did not finish the topic"
        time.sleep(2 * settings.drift_report_interval_s + 1)  # the last drift reports go out
        for w in survivors:
            w.stop()
        store.wait_caught_up(timeout=120)
        assert asyncio.run(wait_caught_up(settings.kafka_bootstrap, dataclasses.replace(settings, role="store").group_id,
                                          [settings.results_topic, settings.drift_reports_topic], 120))
    finally:
        for w in workers:
            if w.alive():
                w.stop()
        store.stop()

    total, unique = query(settings, "SELECT count(), uniqExact(event_id, detector) FROM detections")[0]
    assert total == unique, "a verdict was stored twice"
    assert query(settings, "SELECT count() FROM detections WHERE detector = 'injection'") == [(valid,)]
    assert query(settings, "SELECT count() FROM llm_calls FINAL") == [(valid,)]

    positions = {e: (p, o) for e, p, o in query(settings, "SELECT event_id, kafka_partition, kafka_offset FROM llm_calls FINAL")}
    expected = expected_drift_alarms(settings, messages, positions)
    stored = {e for (e,) in query(settings, "SELECT event_id FROM detections WHERE detector = 'drift' AND flagged = 1")}
    assert expected, "the planted drift should raise an alarm"
    assert stored == expected, f"missing {sorted(expected - stored)[:5]}, extra {sorted(stored - expected)[:5]}"
    app, model, version = DEFAULT_DRIFT_KEY
    drifted = query(settings, f"SELECT signal, count() FROM drift_reports FINAL WHERE drifted = 1 AND service_name = '{app}' "
                              f"AND request_model = '{model}' AND prompt_version = '{version}' GROUP BY signal")
    assert drifted, "the drifted key was never reported as drifted"
    assert all(n == 1 for _, n in drifted), f"an alarm was reported more than once: {drifted}"
