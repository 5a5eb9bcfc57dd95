"""Hostile input and storage faults: each class has one policy and a specific dead-letter reason,
the sink isolates rows the engine refuses, and dead letters always fit the broker."""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from pathlib import Path

import pytest

from streams.storage.clickhouse import connect, migrate
from streams.pipeline.codec import MAX_TIMESTAMP_MS, DecodeError, EventCodec, Limits
from streams.pipeline.dead_letter import (
    HEADER_ORIGINAL_SHA256,
    HEADER_ORIGINAL_SIZE,
    HEADER_TRUNCATED,
    DeadLetter,
    deliver,
    parse_headers,
)
from streams.pipeline.ingest import IngestProcessor, RawMessage
from streams.storage.rows import LLM_CALL_COLUMNS
from streams.storage.sink import ClickHouseSink, is_data_error

CODEC = EventCodec()
# Now, not a fixed date: rows older than the raw TTL (90 days) are dropped as they are inserted.
BASE = {"event_id": "e1", "timestamp_ms": int(time.time() * 1000), "service_name": "svc", "request_model": "m"}


def _json(text: str) -> bytes:
    return text.encode("utf-8")


def _reason(raw: bytes) -> str:
    with pytest.raises(DecodeError) as err:
        CODEC.decode(raw)
    return err.value.reason


@pytest.mark.parametrize(
    "raw,reason",
    [
        (_json('{"event_id":"e","timestamp_ms":1700000000000,"service_name":"s","request_model":"m","latency_ms":NaN}'),
         "non_finite_number"),
        (_json('{"event_id":"e","timestamp_ms":1700000000000,"service_name":"s","request_model":"m","cost_usd":Infinity}'),
         "non_finite_number"),
        (_json('{"event_id":"e","timestamp_ms":1700000000000,"service_name":"s","request_model":"m","cost_usd":-Infinity}'),
         "non_finite_number"),
        (_json('{"event_id":"e","timestamp_ms":1700000000000,"service_name":"s","request_model":"m","latency_ms":1e999}'),
         "non_finite_number"),
        (_json('{"event_id":"e","timestamp_ms":4611686018427387904,"service_name":"s","request_model":"m"}'), "invalid_value"),
        (_json('{"event_id":"e","timestamp_ms":-5,"service_name":"s","request_model":"m"}'), "invalid_value"),
        (_json('{"event_id":"e","timestamp_ms":1700000000000,"service_name":"s","request_model":"m","cost_usd":-0.5}'),
         "invalid_value"),
        (_json('{"event_id":"e","timestamp_ms":1700000000000,"service_name":"s","service_name":"t","request_model":"m"}'),
         "duplicate_key"),
        (_json('{"event_id":"e","timestamp_ms":1700000000000,"service_name":"s","request_model":"m","x":'
               + "[" * 10_000 + "]" * 10_000 + "}"), "too_deep"),
    ],
    ids=["nan", "infinity", "minus-infinity", "overflow", "timestamp-2^62", "timestamp-negative", "negative-cost",
         "duplicate-key", "nesting-10000"],
)
def test_each_class_of_hostile_json_gets_its_own_reason(raw: bytes, reason: str) -> None:
    assert _reason(raw) == reason


def test_non_finite_doubles_in_avro_are_rejected_too() -> None:
    record = CODEC.decode(CODEC.encode_json(BASE)).record
    raw = CODEC.encode_confluent({**record, "latency_ms": math.nan})
    assert _reason(raw) == "non_finite_number"


def test_the_last_storable_timestamp_is_accepted() -> None:
    assert CODEC.decode(CODEC.encode_json({**BASE, "timestamp_ms": MAX_TIMESTAMP_MS})).record["timestamp_ms"] == MAX_TIMESTAMP_MS
    assert _reason(CODEC.encode_json({**BASE, "timestamp_ms": MAX_TIMESTAMP_MS + 1})) == "invalid_value"


def test_a_bom_before_json_is_ignored() -> None:
    assert CODEC.decode(b"\xef\xbb\xbf" + CODEC.encode_json(BASE)).record["event_id"] == "e1"


def test_lone_surrogates_are_repaired_and_counted_everywhere() -> None:
    raw = _json(
        '{"event_id":"e","timestamp_ms":1700000000000,"service_name":"svc\\ud800","request_model":"m",'
        '"input_messages":[{"role":"user","content":"hi \\udfff there"}],"attributes":{"k\\ud801":"v"}}'
    )
    decoded = CODEC.decode(raw)
    assert decoded.repairs == 3
    assert decoded.record["service_name"] == "svc\ufffd"
    assert decoded.record["input_messages"][0]["content"] == "hi \ufffd there"
    assert decoded.record["attributes"] == {"k\ufffd": "v"}
    # ...and the repaired record is encodable, so storage cannot choke on it
    json.dumps(decoded.record, ensure_ascii=False).encode("utf-8")
    assert CODEC.decode(_json('{"event_id":"e","timestamp_ms":1,"service_name":"s\\ud83d\\ude00","request_model":"m"}')).repairs == 0


def test_size_limit_counts_key_and_headers() -> None:
    processor = IngestProcessor(EventCodec(limits=EventCodec().limits.__class__(max_bytes=4096)), "calls")
    value = CODEC.encode_json(BASE)
    batch = processor.process([
        RawMessage(b"k" * 8000, value, 0, 1),
        RawMessage(None, value, 0, 2, headers_bytes=5000),
        RawMessage(b"k", value, 0, 3, headers_bytes=10),
    ])
    assert [d.reason for d in batch.dead_letters] == ["too_large", "too_large"] and len(batch.rows) == 1


def test_internal_error_is_reserved_for_our_own_bugs(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.pipeline.ingest as ingest

    processor = IngestProcessor(EventCodec(), "calls")
    def broken_row(*args, **kwargs):
        raise KeyError("a bug in row building")
    monkeypatch.setattr(ingest, "llm_call_row", broken_row)
    batch = processor.process([RawMessage(None, CODEC.encode_json(BASE), 0, 1)])
    assert [(d.reason, "a bug in row building" in d.error) for d in batch.dead_letters] == [("internal_error", True)]


# -- storage ----------------------------------------------------------------------------------

def test_data_errors_and_transient_errors_are_told_apart() -> None:
    assert is_data_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert is_data_error(RuntimeError("Code: 70. DB::Exception: Cannot convert NaN (CANNOT_CONVERT_TYPE)"))
    assert not is_data_error(RuntimeError("Code: 252. DB::Exception: Too many parts (TOO_MANY_PARTS)"))
    assert not is_data_error(RuntimeError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space"))
    assert not is_data_error(ConnectionRefusedError(111, "refused"))
    assert not is_data_error(RuntimeError("something we have never seen"))  # unknown: retry, never drop


@pytest.fixture
def client(tmp_path: Path):
    c = connect(f"chdb://{tmp_path / 'ch'}")
    migrate(c)
    yield c
    c.close()


def _rows(n: int, poison_at: set[int]) -> list[list]:
    processor = IngestProcessor(EventCodec(), "calls")
    messages = [RawMessage(None, CODEC.encode_json({**BASE, "event_id": f"e{i}"}), 0, i) for i in range(n)]
    rows = processor.process(messages).rows
    name = [c for c, _ in LLM_CALL_COLUMNS].index("service_name")
    for i in poison_at:
        rows[i][name] = "unencodable \ud800"  # what a codec without the repair let through
    return rows


def test_sink_bisects_a_poisoned_batch_stores_the_rest_and_names_the_rejects(client) -> None:
    sink = ClickHouseSink(client, "llm_calls", LLM_CALL_COLUMNS, replay_key=(), max_retries=0)
    rows = _rows(64, poison_at={5, 41})
    for row in rows:
        sink.add(row)
    written = sink.flush()
    assert written == 62
    offsets = [c for c, _ in LLM_CALL_COLUMNS].index("kafka_offset")
    assert sorted(r[offsets] for r, _ in sink.rejected) == [5, 41]
    assert all("surrogates not allowed" in message for _, message in sink.rejected)
    assert client.query("SELECT count(), uniqExact(event_id) FROM llm_calls").result_rows == [(62, 62)]
    # the rollups saw exactly the stored rows
    assert client.query("SELECT sum(calls) FROM llm_calls_1m").result_rows == [(62,)]


def test_storage_rejects_become_dead_letters_with_the_engine_message() -> None:
    processor = IngestProcessor(EventCodec(), "calls")
    messages = [RawMessage(b"k", CODEC.encode_json({**BASE, "event_id": f"e{i}"}), 3, 100 + i) for i in range(3)]
    rows = processor.process(messages).rows
    dead = processor.storage_rejected(messages, [(rows[1], "Code: 70. DB::Exception: nope")])
    assert [(d.reason, d.partition, d.offset, d.value, d.error) for d in dead] == [
        ("storage_rejected", 3, 101, messages[1].value, "Code: 70. DB::Exception: nope")
    ]


# -- dead letters -----------------------------------------------------------------------------

def test_an_oversized_dead_letter_is_truncated_with_its_size_and_hash() -> None:
    import hashlib

    value = b"v" * 3_000_000
    letter = DeadLetter(value, b"k" * 8_000_000, "too_large", "big", "calls", 0, 9)
    fitted = letter.fitted(1_000_000)
    headers = parse_headers(fitted.headers())
    assert fitted.size() <= 1_000_000
    assert len(fitted.key) == 256 and fitted.value == value[: len(fitted.value)]
    assert headers[HEADER_ORIGINAL_SIZE] == str(11_000_000)
    assert headers[HEADER_ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest()
    assert headers[HEADER_TRUNCATED] == "key,value"
    small = DeadLetter(b"v", b"k", "empty", "", "calls", 0, 1)
    assert small.fitted(1_000_000) is small and HEADER_TRUNCATED not in parse_headers(small.headers())


def test_delivery_retries_until_the_broker_takes_it_and_shrinks_what_it_refuses() -> None:
    attempts: list[int] = []

    class TooLarge(Exception):
        pass

    async def send(letter: DeadLetter):
        attempts.append(letter.size())
        future = asyncio.get_running_loop().create_future()
        if len(attempts) == 1:
            future.set_exception(ConnectionError("broker restarting"))
        elif letter.size() > 100_000:
            future.set_exception(TooLarge("MessageSizeTooLargeError: too large"))
        else:
            future.set_result(None)
        return future

    letter = DeadLetter(b"v" * 900_000, None, "too_large", "", "calls", 0, 1)
    asyncio.run(deliver(send, [letter], backoff_s=0.001))
    assert len(attempts) >= 3 and attempts[-1] <= 100_000


def test_producer_duplicates_count_once_in_the_table_and_the_rollups(client) -> None:
    sink = ClickHouseSink(client, "llm_calls", LLM_CALL_COLUMNS, replay_key=(), dedup_key=(), max_retries=0)
    processor = IngestProcessor(EventCodec(), "calls")

    def batch(ids: list[int], first_offset: int) -> list[list]:
        messages = [RawMessage(None, CODEC.encode_json({**BASE, "event_id": f"e{i}"}), 0, first_offset + k)
                    for k, i in enumerate(ids)]
        return processor.process(messages).rows

    for row in batch(list(range(10)), 0):
        sink.add(row)
    assert sink.flush() == 10
    # a retry storm: e5..e9 again at later offsets, e12 twice in the same batch
    for row in batch([5, 6, 7, 8, 9, 10, 11, 12, 12], 10):
        sink.add(row)
    assert sink.flush() == 3 and sink.duplicates_dropped == 6
    assert client.query("SELECT count(), uniqExact(event_id) FROM llm_calls").result_rows == [(13, 13)]
    assert client.query("SELECT sum(calls) FROM llm_calls_1m").result_rows == [(13,)]
    # the same id at another time is another event: kept
    later = {**BASE, "event_id": "e1", "timestamp_ms": BASE["timestamp_ms"] + 1}
    sink.add(processor.process([RawMessage(None, CODEC.encode_json(later), 0, 99)]).rows[0])
    assert sink.flush() == 1


def test_verdicts_and_dead_letters_are_resent_until_the_broker_takes_them() -> None:
    """A produce that fails (the broker away for a while) is retried, refitted when asked; the
    agent waits instead of crashing with its batch unacked."""
    from streams.kafka.send_retry import send_all

    attempts: list[str] = []

    async def send(item: str):
        attempts.append(item)
        fut = asyncio.get_running_loop().create_future()
        if attempts.count(item) < 3 and item.startswith("flaky"):
            fut.set_exception(OSError("leader not available"))
        else:
            fut.set_result(item)
        return fut

    asyncio.run(send_all(send, ["flaky-1", "ok", "flaky-2"], backoff_s=0))
    assert Counter(attempts) == {"flaky-1": 3, "ok": 1, "flaky-2": 3}

    attempts.clear()
    asyncio.run(send_all(send, ["flaky"], refit=lambda item, exc: "refitted", backoff_s=0))
    assert attempts == ["flaky", "refitted"]


def test_a_replay_rebuilds_rollup_buckets_the_views_missed(client) -> None:
    """A kill between the table's part and the views' parts leaves rows no rollup counted; the
    replay guard keeps their re-read copies out of the table, so the sink rebuilds the buckets
    of the replayed rows from the table instead."""
    sink = ClickHouseSink(client, "llm_calls", LLM_CALL_COLUMNS, replay_key=(), dedup_key=(), max_retries=0)
    processor = IngestProcessor(EventCodec(), "calls")
    now = int(time.time() * 1000)
    messages = [RawMessage(None, CODEC.encode_json({**BASE, "event_id": f"e{i}", "timestamp_ms": now - i * 20_000,
                                                    "time_to_first_token_ms": 5.0}), 0, i) for i in range(30)]
    rows = processor.process(messages).rows
    for row in rows:
        sink.add(row)
    assert sink.flush() == 30
    # what the kill leaves: the table has every row, the rollups lost the oldest minutes
    client.command("ALTER TABLE llm_calls_1m DELETE WHERE minute < now() - INTERVAL 5 MINUTE SETTINGS mutations_sync = 2")
    client.command("ALTER TABLE llm_latency_1m DELETE WHERE minute < now() - INTERVAL 5 MINUTE SETTINGS mutations_sync = 2")
    assert client.query("SELECT sum(calls) FROM llm_calls_1m").result_rows[0][0] < 30
    # the restarted worker re-reads the tail of the partition
    replayed = ClickHouseSink(client, "llm_calls", LLM_CALL_COLUMNS, replay_key=(), dedup_key=(), max_retries=0)
    for row in processor.process(messages[10:]).rows:
        replayed.add(row)
    assert replayed.flush() == 0  # nothing stored twice
    assert replayed.rollup_repair is not None and replayed.rollup_repair.repaired_buckets > 0
    assert client.query("SELECT count() FROM llm_calls").result_rows == [(30,)]
    assert client.query("SELECT sum(calls) FROM llm_calls_1m").result_rows == [(30,)]
    assert client.query("SELECT metric, sum(arraySum(hist.2)) FROM llm_latency_1m GROUP BY metric ORDER BY metric").result_rows == [
        ("latency_ms", 30), ("ttft_ms", 30)]


def test_dead_letters_redact_json_strings_but_keep_numbers_and_their_source() -> None:
    from streams.pipeline.ingest import redact_bytes
    from streams.pipeline.redaction import Redactor

    raw = b'  {"ts": 1764664000000, "to": "bob@example.com", "phone": "+1 (415) 555-0132"}'
    assert redact_bytes(Redactor(), raw) == b'  {"ts": 1764664000000, "to": "[EMAIL]", "phone": "[PHONE]"}'
    # not JSON: the whole text is redacted, numbers included
    assert redact_bytes(Redactor(), b"call +1 (415) 555-0132") == b"call [PHONE]"
    processor = IngestProcessor(CODEC, "calls", Redactor())
    dead = processor.process([RawMessage(b"k", raw, 3, 41)]).dead_letters[0]
    assert (dead.topic, dead.partition, dead.offset) == ("calls", 3, 41)
    assert dead.value == redact_bytes(Redactor(), raw)


def test_raw_message_counts_header_bytes_and_decode_or_none_rejects_quietly() -> None:
    from types import SimpleNamespace

    from streams.pipeline.ingest import raw_message

    good = CODEC.encode_json(BASE)
    as_list = SimpleNamespace(key=b"k", value=good, partition=2, offset=9, headers=[("trace", b"abc"), ("n", None)])
    as_dict = SimpleNamespace(key=None, value=good, partition=0, offset=1, headers={"trace": b"abcd"})
    assert raw_message(as_list) == RawMessage(b"k", good, 2, 9, len("trace") + 3 + len("n"))
    assert raw_message(as_dict).headers_bytes == 9 and raw_message(as_dict).size() == len(good) + 9
    no_headers = SimpleNamespace(key=None, value=good, partition=0, offset=1, headers=None)
    assert raw_message(no_headers).headers_bytes == 0
    processor = IngestProcessor(CODEC, "calls")
    assert processor.decode_or_none(raw_message(as_list))["event_id"] == "e1"
    assert processor.decode_or_none(RawMessage(None, b"{not json", 0, 1)) is None
    small = IngestProcessor(EventCodec(limits=Limits(len(good) + 4)), "calls")
    assert small.decode_or_none(RawMessage(b"k" * 5, good, 0, 1)) is None  # the key counts
    assert small.decode_or_none(RawMessage(None, good, 0, 1)) is not None
