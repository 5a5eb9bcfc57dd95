"""Quality verdicts split by check (``quality_scores``) and rolled up (``quality_1m``) on the real
embedded engine, including the rebuild after a crash replay."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from detectors.base import Event
from detectors.quality import CHECKS, QualityDetector
from streams.pipeline.detection import DETECTION_COLUMNS, DetectionRunner, Positioned
from streams.pipeline.redaction import Redactor
from streams.storage.clickhouse import connect, migrate
from streams.storage.rollup_repair import rollups_of
from streams.storage.sink import ClickHouseSink

ANSWERS = [
    ("How do I reset my password?", "I'm sorry, but I can't help with that."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Write a haiku about rain.", "Rain taps on the roof\nsoft drums"),
    ("List three colours as JSON.", '["red", "green", "blue"]'),
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    c = connect(f"chdb://{tmp_path / 'ch'}")
    migrate(c)
    yield c
    c.close()


def verdict_rows(n: int) -> list[list[Any]]:
    """``n`` quality verdicts as the live agent stores them (through the real detector)."""
    now = int(time.time() * 1000)
    batch = [Positioned({"event_id": f"q{i}", "input_messages": [{"role": "user", "content": ANSWERS[i % 4][0]}],
                         "output_text": ANSWERS[i % 4][1], "retrieved_context": [], "service_name": "app",
                         "request_model": "m", "prompt_version": "v1", "timestamp_ms": now - i * 20_000,
                         "system_instructions": None, "deployment_environment": "prod", "attributes": {}}, 0, i)
             for i in range(n)]
    return DetectionRunner([QualityDetector()], "calls", Redactor(())).run(batch).rows


def test_each_verdict_becomes_one_row_per_check_and_the_minutes_count_them(client: Any) -> None:
    sink = ClickHouseSink(client, "detections", DETECTION_COLUMNS, replay_key=("detector",), dedup_key=("detector",))
    for row in verdict_rows(8):
        sink.add(row)
    assert sink.flush() == 8
    per_metric = dict(client.query("SELECT metric, count() FROM quality_scores FINAL GROUP BY metric").result_rows)
    applied = set(CHECKS) - {"format"}  # no call declared an output format
    assert per_metric == {m: 8 for m in applied}
    refusals = client.query("SELECT event_id FROM quality_scores FINAL WHERE metric = 'refusal' AND flagged ORDER BY event_id")
    assert refusals.result_rows == [("q0",), ("q4",)]
    rolled = client.query("SELECT metric, sum(checks), sum(flagged) FROM quality_1m GROUP BY metric ORDER BY metric").result_rows
    raw = client.query("SELECT metric, count(), sum(flagged) FROM quality_scores FINAL GROUP BY metric ORDER BY metric").result_rows
    assert rolled == raw


def test_a_replay_restores_split_rows_and_minutes_the_views_missed(client: Any) -> None:
    rows = verdict_rows(12)
    sink = ClickHouseSink(client, "detections", DETECTION_COLUMNS, replay_key=("detector",), dedup_key=("detector",),
                          max_retries=0)
    for row in rows:
        sink.add(row)
    assert sink.flush() == 12
    # what a kill between the table's part and the views' parts leaves
    client.command("ALTER TABLE quality_scores DELETE WHERE event_id IN ('q8', 'q9', 'q10', 'q11') SETTINGS mutations_sync = 2")
    client.command("ALTER TABLE quality_1m DELETE WHERE minute < now() - INTERVAL 150 SECOND SETTINGS mutations_sync = 2")
    replayed = ClickHouseSink(client, "detections", DETECTION_COLUMNS, replay_key=("detector",), dedup_key=("detector",),
                              max_retries=0)
    for row in rows[6:]:
        replayed.add(row)
    assert replayed.flush() == 0  # nothing stored twice
    checks = len(CHECKS) - 1
    assert client.query("SELECT count() FROM quality_scores FINAL").result_rows == [(12 * checks,)]
    assert client.query("SELECT sum(checks) FROM quality_1m").result_rows == [(12 * checks,)]


def test_repair_knows_the_split_view_from_the_rollups() -> None:
    kinds = {r.target: r.floor is None for r in rollups_of("detections")}
    assert kinds["quality_scores"] is True and kinds["quality_1m"] is False and kinds["detections_1m"] is False


def test_the_detector_judges_what_the_fixture_says() -> None:
    det = QualityDetector()
    assert det.detect(Event(prompt=ANSWERS[0][0], response=ANSWERS[0][1])).label == "refusal"
    assert not det.detect(Event(prompt=ANSWERS[1][0], response=ANSWERS[1][1])).flagged
