"""Fuzz and fault suite through the real worker on the real broker (issue 12, item 8).

Hypothesis generates a few thousand messages from the Avro schema plus hostile strings, numbers,
structures, keys and headers, with producer duplicates mixed in. They go to Kafka in two waves;
an ingest worker reads them. The invariants, checked against what each message must become:

- every message is either stored exactly once (a duplicate of an event counts once, in the
  rollups too) or dead-lettered with a specific reason, never ``internal_error``;
- the worker stays alive and keeps committing (the group's lag reaches 0 after each wave).
"""
from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from streams.pipeline.codec import MAX_TIMESTAMP_MS, EventCodec, Limits
from streams.pipeline.dead_letter import HEADER_ORIGINAL_SIZE, HEADER_REASON, HEADER_TRUNCATED, parse_headers
from streams.pipeline.ingest import IngestProcessor, RawMessage
from streams.pipeline.redaction import Redactor
from streams.storage.rows import LLM_CALL_COLUMNS
from streams.kafka.topics import ensure_topics
from tests.streams.hostile import EVENTS, REASONS, json_bytes
from tests.streams.agents.test_ingest_worker import valid_event
from tests.streams.worker_harness import WorkerProcess, consume_all, produce, query, unique_settings

MAX_BYTES = 16 * 1024
DAY_MS = 86_400_000
CODEC = EventCodec(limits=Limits(MAX_BYTES))
HEADERS = st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=40)), max_size=3)
KEYS = st.one_of(st.none(), st.binary(max_size=64), st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")))


@dataclasses.dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def raw(self, offset: int) -> RawMessage:
        size = sum(len(k.encode("utf-8", "surrogatepass")) + len(v) for k, v in self.headers)
        return RawMessage(self.key, self.value, 0, offset, size)


def _recent(event: dict[str, Any], index: int) -> dict[str, Any]:
    """Unique ids and timestamps inside the raw TTL, keeping hostile values of either field."""
    event = dict(event)
    if isinstance(event.get("event_id"), str):
        event["event_id"] = f"fz-{index}-{event['event_id'][:8]}"
    ts = event.get("timestamp_ms")
    if isinstance(ts, int) and not isinstance(ts, bool) and 0 < ts <= MAX_TIMESTAMP_MS:
        event["timestamp_ms"] = int(time.time() * 1000) - ts % (30 * DAY_MS)
    return event


def generate(at_least: int) -> list[Message]:
    """Messages drawn by hypothesis, run after run with fixed seeds until there are ``at_least``
    (deterministic: how many one run yields depends on the hypothesis version's heuristics)."""
    out: list[Message] = []

    def draw(batch: list[tuple[dict, bool, bytes | None, list[tuple[str, bytes]]]]) -> None:
        for event, avro, key, headers in batch:
            raw = json_bytes(_recent(event, len(out)))
            if avro:  # the same event as Confluent Avro where it fits the schema
                try:
                    raw = CODEC.encode_confluent(CODEC.decode(raw).record)
                except Exception:
                    pass
            headers = tuple((k.encode("utf-8", "replace").decode(), v) for k, v in headers)
            out.append(Message(key, raw, headers))

    for run in range(50):
        if len(out) >= at_least:
            break
        runner = settings(max_examples=50, database=None, phases=[Phase.generate], deadline=None,
                          suppress_health_check=list(HealthCheck))(
            seed(run)(given(st.lists(st.tuples(EVENTS, st.booleans(), KEYS, HEADERS), min_size=6, max_size=30))(draw)))
        runner()
    return out


def expected_outcome(messages: list[Message]) -> tuple[set[tuple[str, int]], Counter]:
    """(event_id, timestamp) of every row the messages must store, and the dead-letter reasons."""
    processor = IngestProcessor(CODEC, "calls", Redactor.from_names("all"))
    names = [name for name, _ in LLM_CALL_COLUMNS]
    id_at, ts_at = names.index("event_id"), names.index("timestamp")
    stored: set[tuple[str, int]] = set()
    reasons: Counter = Counter()
    for offset, message in enumerate(messages):
        batch = processor.process([message.raw(offset)])
        reasons.update(dead.reason for dead in batch.dead_letters)
        for row in batch.rows:
            stored.add((row[id_at], round(row[ts_at].timestamp() * 1000)))
    return stored, reasons


@pytest.fixture
def fuzz_settings(kafka_bootstrap, tmp_path):
    s = unique_settings(kafka_bootstrap, tmp_path, max_message_bytes=MAX_BYTES, batch_size=500, detectors="")
    ensure_topics(s)
    return s


def test_generated_traffic_is_stored_once_or_dead_lettered_with_a_reason(fuzz_settings) -> None:
    s = fuzz_settings
    unique = generate(at_least=1850)
    rng = random.Random(12)
    # producer retries: a tenth of the messages again, later, byte for byte
    messages = unique + [rng.choice(unique) for _ in range(len(unique) // 10)]
    rng.shuffle(messages)
    assert len(messages) >= 2000
    stored, reasons = expected_outcome(messages)
    assert len(stored) > 300 and sum(reasons.values()) > 300, "the traffic should mix rows and dead letters"
    assert set(reasons) <= REASONS, reasons

    worker = WorkerProcess(s).start()
    try:
        half = len(messages) // 2
        for wave in (messages[:half], messages[half:]):
            asyncio.run(produce(s.kafka_bootstrap, s.calls_topic, [(m.key, m.value, m.headers) for m in wave]))
            worker.wait_caught_up(timeout=180)
        dead = asyncio.run(consume_all(s.kafka_bootstrap, s.dead_letter_topic, expected=sum(reasons.values()), timeout_s=60))
        assert worker.alive(), worker.log_text()[-3000:]
    finally:
        worker.stop()

    got = Counter(parse_headers(r.headers)[HEADER_REASON] for r in dead)
    # The engine may refuse a row the codec accepted: it is then dead-lettered, not stored.
    rejected = got.pop("storage_rejected", 0)
    assert got == reasons
    rows = query(s, "SELECT count(), uniqExact(event_id, timestamp) FROM llm_calls")
    assert rows == [(len(stored) - rejected, len(stored) - rejected)]
    ids = {r[0] for r in query(s, "SELECT event_id FROM llm_calls")}
    assert ids <= {event_id for event_id, _ in stored}
    # the rollups agree with the table, group by group
    table = query(s, "SELECT service_name, request_model, prompt_version, count() FROM llm_calls "
                     "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    rollup = query(s, "SELECT service_name, request_model, prompt_version, sum(calls) FROM llm_calls_1m "
                      "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    assert rollup == table
    hist = query(s, "SELECT sum(arraySum(hist.2)) FROM llm_latency_1m WHERE metric = 'latency_ms'")
    assert hist == [(len(stored) - rejected,)]


def test_an_oversized_key_is_dead_lettered_and_spares_its_batch(fuzz_settings) -> None:
    """A 2 MB key (the broker takes 8 MB; the value limit alone never saw it) sits between valid
    events: it is dead-lettered as too_large, cut to fit the dead-letter topic, and every valid
    event of its batch is stored. Before the fix the agent crashed and the batch was lost."""
    s = fuzz_settings
    valid = [Message(None, CODEC.encode_json({**valid_event(i), "event_id": f"ok-{i}"}), ()) for i in range(40)]
    huge = Message(b"k" * (2 * 1024 * 1024), CODEC.encode_json(valid_event(99)), ())
    worker = WorkerProcess(s).start()
    try:
        asyncio.run(produce(s.kafka_bootstrap, s.calls_topic, [(m.key, m.value) for m in valid[:20] + [huge] + valid[20:]]))
        worker.wait_caught_up(timeout=120)
        dead = asyncio.run(consume_all(s.kafka_bootstrap, s.dead_letter_topic, expected=1, timeout_s=30))
        assert worker.alive()
    finally:
        worker.stop()
    assert len(dead) == 1
    headers = parse_headers(dead[0].headers)
    assert headers[HEADER_REASON] == "too_large"
    assert int(headers[HEADER_ORIGINAL_SIZE]) >= 2 * 1024 * 1024 and "key" in headers[HEADER_TRUNCATED]
    assert len(dead[0].key or b"") + len(dead[0].value or b"") < 1_000_000
    assert query(s, "SELECT count(), uniqExact(event_id) FROM llm_calls") == [(40, 40)]
