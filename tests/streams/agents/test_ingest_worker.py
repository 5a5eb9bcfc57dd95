"""The ingest path end to end on a real Kafka broker and the real embedded ClickHouse engine."""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import struct
import time
from collections import Counter

import httpx
import pytest
from aiokafka.errors import KafkaError

from streams.storage.clickhouse import connect, migrate
from streams.pipeline.codec import EventCodec, Limits
from streams.devtools.kafka_local import free_port
from streams.kafka.lag import consumer_lag
from streams.pipeline.dead_letter import HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC, parse_headers
from streams.kafka.topics import ensure_topics
from tests.streams.worker_harness import WorkerProcess, consume_all, produce, query, unique_settings

CODEC = EventCodec()
MAX_BYTES = 64 * 1024


def valid_event(i: int) -> dict:
    now_ms = int(time.time() * 1000)
    return {
        "event_id": f"evt-{i:06d}",
        "timestamp_ms": now_ms - i,
        "service_name": ("support-bot", "rag-search", "code-assist")[i % 3],
        "request_model": ("gpt-4o-mini", "claude-3-5-sonnet")[i % 2],
        "prompt_version": f"v{i % 3}",
        "input_messages": [{"role": "user", "content": f"question number {i} — ünïcödé ok"}],
        "output_text": f"answer {i}",
        "retrieved_context": [f"passage {i}"],
        "input_tokens": 10 + i % 50,
        "output_tokens": 5 + i % 20,
        "latency_ms": 100.0 + i % 700,
        "cost_usd": 0.0001 * (i % 10),
    }


def valid_messages(n: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(n):
        event = valid_event(i)
        if i % 2:
            raw = CODEC.encode_json(event)
        else:
            record = CODEC.decode(CODEC.encode_json(event)).record
            raw = CODEC.encode_confluent(record, schema_id=1 + i % 4 // 2)  # v1 and v2 writers
        out.append((event["service_name"].encode(), raw))
    return out


def malformed_messages(n: int) -> list[tuple[bytes | None, bytes, str]]:
    """``n`` bad messages cycling through every kind of damage, with the reason each must get."""
    good_avro = CODEC.encode_confluent(CODEC.decode(CODEC.encode_json(valid_event(1))).record)
    good_json = CODEC.encode_json(valid_event(2))
    bad_utf8_avro = good_avro.replace("question".encode(), b"quest\xff\xfen")
    kinds = [
        (good_avro[: len(good_avro) // 2], "truncated"),
        (b"\x00" + struct.pack(">I", 999) + good_avro[5:], "unknown_schema_id"),
        (good_json.replace(b"question", b"quest\xff\xfen"), "invalid_utf8"),
        (bad_utf8_avro, "invalid_utf8"),
        (b'{"event_id": "x", "timestamp_ms": 1}', "missing_field"),
        (CODEC.encode_json({**valid_event(5), "latency_ms": "slow"}), "wrong_type"),
        (CODEC.encode_json({**valid_event(3), "input_tokens": "lots"}), "wrong_type"),
        (CODEC.encode_json({**valid_event(4), "output_text": "x" * MAX_BYTES}), "too_large"),
        (b"", "empty"),
        (good_avro + b"\x02junk", "bad_avro"),  # bytes after a complete record
        (CODEC.encode_json({**valid_event(6), "timestamp_ms": 2**62}), "invalid_value"),
        (CODEC.encode_json(valid_event(7)).replace(b'"latency_ms":', b'"latency_ms":NaN,"x":'), "non_finite_number"),
    ]
    return [(None, raw, reason) for (raw, reason), _ in zip(itertools.cycle(kinds), range(n))]


def metric(settings, sample: str) -> float:
    """One sample of the worker's /metrics (0 when the counter has no such child yet)."""
    text = httpx.get(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(sample + " ")]
    return values[0] if values else 0.0


def committed_lag(settings) -> int | None:
    """Messages not committed yet, or None while the group coordinator is still loading."""
    try:
        lag = asyncio.run(consumer_lag(settings.kafka_bootstrap, settings.calls_groups, [settings.calls_topic]))
    except KafkaError:
        return None
    return sum(lag.values()) if lag else None


@pytest.fixture
def settings(kafka_bootstrap, tmp_path):
    s = unique_settings(kafka_bootstrap, tmp_path, max_message_bytes=MAX_BYTES, batch_size=1000)
    ensure_topics(s)
    return s


def test_each_malformed_kind_is_rejected_with_its_reason():
    codec = EventCodec(limits=Limits(MAX_BYTES))
    for _, raw, reason in malformed_messages(12):
        with pytest.raises(ValueError) as err:
            codec.decode(raw)
        assert err.value.reason == reason, (raw[:60], err.value)


def test_valid_and_malformed_traffic_lands_exactly_once(settings):
    # Ingest only: it reads in a consumer group of its own, so the detector agents (tested in
    # test_detection_worker) change nothing here but the run time.
    settings = dataclasses.replace(settings, detectors="")
    good = valid_messages(5000)
    bad = malformed_messages(500)
    mixed = good + [(k, v) for k, v, _ in bad]
    # interleave so bad messages sit between good ones in every batch
    mixed.sort(key=lambda kv: hash(kv[1]) % 9973)
    worker = WorkerProcess(settings).start()
    try:
        asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, mixed))
        worker.wait_caught_up(timeout=180)
        assert worker.alive(), worker.log_text()[-3000:]
        dead = asyncio.run(consume_all(settings.kafka_bootstrap, settings.dead_letter_topic, expected=500))
    finally:
        worker.stop()

    assert len(dead) == 500
    reasons = Counter()
    for record in dead:
        headers = parse_headers(record.headers)
        reasons[headers[HEADER_REASON]] += 1
        assert headers[HEADER_TOPIC] == settings.calls_topic
        assert int(headers[HEADER_PARTITION]) >= 0 and int(headers[HEADER_OFFSET]) >= 0
    assert reasons == Counter(reason for _, _, reason in bad)
    # the original bytes travel untouched
    assert sorted(r.value or b"" for r in dead) == sorted(v for _, v, _ in bad)

    rows = query(settings, "SELECT count(), uniqExact(event_id), countIf(schema_id = 0), countIf(schema_id > 0) FROM llm_calls FINAL")
    assert rows == [(5000, 5000, 2500, 2500)]
    raw_rows = query(settings, "SELECT count() FROM llm_calls")
    assert raw_rows == [(5000,)]  # no replay happened, so not even unmerged duplicates


def test_sigkill_mid_stream_then_restart_stores_every_event_once(settings):
    # small batches: many commits, so the kill lands between two of them with work in flight
    # Ingest only: the detection agents have their own kill test (test_detection_worker), and on 2
    # cores they would make this one take minutes.
    settings = dataclasses.replace(settings, batch_size=200, detectors="", web_port=free_port())
    n = 20000
    asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, valid_messages(n)))
    worker = WorkerProcess(settings).start()
    deadline = time.monotonic() + 120
    # Kill once some but not all of the topic is committed: work is in flight.
    while time.monotonic() < deadline:
        lag = committed_lag(settings)
        if lag is not None and 0 < lag < n:
            break
        time.sleep(0.2)
    worker.kill()
    remaining = committed_lag(settings)
    assert 0 < remaining < n, "the kill should land mid-stream"
    stored_at_kill = query(settings, "SELECT count() FROM llm_calls")[0][0]
    assert stored_at_kill >= n - remaining, "offsets were committed for rows that were never stored"

    worker.start()
    try:
        worker.wait_caught_up(timeout=240)
        dropped = metric(settings, 'llmwatch_replayed_rows_dropped_total{table="llm_calls"}')
    finally:
        worker.stop()
    assert query(settings, "SELECT count(), uniqExact(event_id) FROM llm_calls FINAL") == [(n, n)]
    # the replay guard kept re-read messages out of the table, not just out of FINAL reads
    assert query(settings, "SELECT count() FROM llm_calls") == [(n,)]
    # The restarted worker re-read exactly the rows stored but not committed at the kill, and the
    # replay guard dropped exactly those.
    assert dropped == stored_at_kill - (n - remaining), (dropped, stored_at_kill, n - remaining)
    # and the rollups count every event once, as the table does
    assert query(settings, "SELECT sum(calls) FROM llm_calls_1m") == [(n,)]
    assert query(settings, "SELECT sum(arraySum(hist.2)) FROM llm_latency_1m WHERE metric = 'latency_ms'") == [(n,)]


def test_sigterm_during_a_stuck_insert_exits_in_bound_and_commits_nothing_unstored(settings):
    """An insert that hangs (here a view that sleeps 3 s per row) must neither keep the worker
    alive past its shutdown bound nor get its batch committed; the next worker stores it once."""
    settings = dataclasses.replace(settings, detectors="", shutdown_timeout_s=5.0)
    client = connect(settings.dsn)
    migrate(client)
    client.command("CREATE TABLE stall_sink (y UInt8) ENGINE = Null")
    client.command(
        "CREATE MATERIALIZED VIEW stall_mv TO stall_sink AS SELECT sleepEachRow(3) AS y FROM llm_calls "
        "SETTINGS function_sleep_max_microseconds_per_block = 0"
    )
    client.close()
    n = 50
    asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, valid_messages(n)))
    worker = WorkerProcess(settings).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "llmwatch ready" not in worker.log_text():
        time.sleep(0.2)
    time.sleep(3)  # the first batch is read and its insert is sleeping in the view
    assert worker.alive() and committed_lag(settings) in (None, n)
    started = time.monotonic()
    code = worker.stop(timeout=60)
    took = time.monotonic() - started
    assert code == 3 and took < settings.shutdown_timeout_s + 5, (code, took)
    assert "took longer than 5 s" in worker.failure()
    assert committed_lag(settings) == n  # nothing committed: the batch was never acknowledged

    client = connect(settings.dsn)
    client.command("DROP VIEW stall_mv")
    client.close()
    worker.run_until_caught_up(timeout=120)
    assert query(settings, "SELECT count(), uniqExact(event_id) FROM llm_calls") == [(n, n)]


def test_healthz_reports_degraded_while_inserts_keep_failing(settings):
    """A table constraint that no row meets makes every insert fail (an error the sink cannot
    blame on the values' types, so it retries): after the bound, /healthz says degraded with the
    reason, and the gauge agrees."""
    settings = dataclasses.replace(settings, detectors="", web_port=free_port(), health_insert_failing_s=2.0,
                                   shutdown_timeout_s=5.0)
    client = connect(settings.dsn)
    migrate(client)
    client.command("ALTER TABLE llm_calls ADD CONSTRAINT never_true CHECK service_name = 'no such service'")
    client.close()
    asyncio.run(produce(settings.kafka_bootstrap, settings.calls_topic, valid_messages(20)))
    worker = WorkerProcess(settings).start()
    try:
        body, deadline = None, time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{settings.web_port}/healthz", timeout=2)
                if r.json().get("status") == "degraded":
                    body = r
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        assert body is not None, worker.log_text()[-3000:]
        assert body.status_code == 503
        assert any(reason.startswith("inserts into llm_calls failing for") for reason in body.json()["reasons"])
        assert metric(settings, "llmwatch_degraded") == 1.0
        assert committed_lag(settings) in (None, 20)  # nothing stored, nothing committed
    finally:
        worker.stop()
