"""The traffic generator: deterministic, decodable, with labelled planted problems."""
from __future__ import annotations

import asyncio
import statistics
import uuid
from collections import Counter

import pytest
from typer.testing import CliRunner

from streams.cli import app as cli_app
from streams.pipeline.codec import DecodeError, EventCodec
from streams.devtools.generator import (
    DEFAULT_DRIFT_KEY, INDIRECT_INJECTIONS, MALFORMED_KINDS, MODELS, PLANTED, VALID_KINDS, Generator,
)
from streams.devtools.kafka_local import create_topics_async

N = 4000
DRIFT_AFTER = 1500


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(Generator(seed=7, drift_after=DRIFT_AFTER).events(N))


def key(event: dict) -> tuple[str, str, str]:
    return (event["service_name"], event["request_model"], event["prompt_version"])


def test_same_seed_same_events_and_bytes() -> None:
    assert list(Generator(seed=3).events(300)) == list(Generator(seed=3).events(300))
    assert list(Generator(seed=3).events(50)) != list(Generator(seed=4).events(50))
    a = [m.value for m in Generator(seed=3).messages(500, malformed_ratio=0.2)]
    assert a == [m.value for m in Generator(seed=3).messages(500, malformed_ratio=0.2)]


def test_messages_carry_the_same_events_as_events() -> None:
    assert [m.event for m in Generator(seed=9).messages(200, malformed_ratio=0.3)] == list(Generator(seed=9).events(200))


def test_every_event_is_valid_and_labelled(events: list[dict]) -> None:
    codec = EventCodec()
    for event in events:
        assert event["attributes"]["llmwatch.planted"] in PLANTED
        assert codec.decode(codec.encode_confluent(event)).record == event
    assert len({e["event_id"] for e in events}) == N
    assert all(uuid.UUID(e["event_id"]).version == 4 for e in events)
    timestamps = [e["timestamp_ms"] for e in events]
    assert timestamps == sorted(timestamps)


def test_each_malformed_kind_fails_with_its_reason() -> None:
    codec = EventCodec()
    seen: Counter[str] = Counter()
    for msg in Generator(seed=5).messages(3000, malformed_ratio=0.5):
        if msg.valid:
            continue
        with pytest.raises(DecodeError) as info:
            codec.decode(msg.value)
        assert info.value.reason == MALFORMED_KINDS[msg.kind], (msg.kind, info.value)
        seen[msg.kind] += 1
    assert set(seen) == set(MALFORMED_KINDS)


def test_each_valid_message_decodes() -> None:
    codec = EventCodec()
    seen: Counter[str] = Counter()
    for msg in Generator(seed=6).messages(2000, malformed_ratio=0.05, json_ratio=0.3, v1_ratio=0.2):
        if not msg.valid:
            continue
        decoded = codec.decode(msg.value)
        expected_id = {"json": 0, "avro_v1": 1, "avro_v2": codec.latest_id}[msg.kind]
        assert decoded.schema_id == expected_id
        assert decoded.record["event_id"] == msg.event["event_id"]
        assert decoded.record["attributes"]["llmwatch.planted"] == msg.event["attributes"]["llmwatch.planted"]
        assert msg.key == msg.event["service_name"].encode()
        seen[msg.kind] += 1
    assert set(seen) == set(VALID_KINDS)
    assert 0.02 < sum(1 for m in Generator(seed=6).messages(2000, malformed_ratio=0.05) if not m.valid) / 2000 < 0.08


def test_planted_injections(events: list[dict]) -> None:
    injections = [e for e in events if e["attributes"]["llmwatch.planted"] == "injection"]
    assert len(injections) > 40
    indirect = [e for e in injections if e["attributes"]["llmwatch.planted_variant"] == "indirect"]
    assert indirect and all(e["service_name"] == "rag-search" for e in indirect)
    for e in indirect:
        assert any(marker in passage for passage in e["retrieved_context"] for marker in INDIRECT_INJECTIONS)
    direct = [e for e in injections if e["attributes"]["llmwatch.planted_variant"] == "direct"]
    assert {e["service_name"] for e in direct} == {"support-bot", "rag-search", "code-assist"}
    clean = [e for e in events if not e["attributes"]["llmwatch.planted"]]
    assert not any(m in p for e in clean for p in e["retrieved_context"] for m in INDIRECT_INJECTIONS)


def test_planted_ungrounded_answers_state_facts_absent_from_context(events: list[dict]) -> None:
    ungrounded = [e for e in events if e["attributes"]["llmwatch.planted"] == "ungrounded"]
    assert len(ungrounded) > 50
    for e in ungrounded:
        assert e["service_name"] == "rag-search" and e["retrieved_context"] and e["retrieval_query"]
        context = " ".join(e["retrieved_context"])
        numbers = [tok.strip(".,$#") for tok in e["output_text"].split() if any(c.isdigit() for c in tok)]
        assert any(n not in context for n in numbers), e["output_text"]


def test_drift_phase_changes_one_key(events: list[dict]) -> None:
    drift = [i for i, e in enumerate(events) if e["attributes"]["llmwatch.planted"] == "drift"]
    assert drift and min(drift) >= DRIFT_AFTER
    assert {key(events[i]) for i in drift} == {DEFAULT_DRIFT_KEY}
    after = [e for e in events[DRIFT_AFTER:] if key(e) == DEFAULT_DRIFT_KEY and e["status"] == "ok"]
    before = [e for e in events[:DRIFT_AFTER] if key(e) == DEFAULT_DRIFT_KEY and e["status"] == "ok"]
    assert all(e["attributes"]["llmwatch.planted"] == "drift" for e in after)
    assert statistics.median(e["output_tokens"] for e in after) > 2 * statistics.median(e["output_tokens"] for e in before)
    assert statistics.median(e["latency_ms"] for e in after) > 1.5 * statistics.median(e["latency_ms"] for e in before)
    assert not Generator(seed=7, drift_after=None).events(N).__next__()["attributes"]["llmwatch.planted"] == "drift"


def test_realistic_shape(events: list[dict]) -> None:
    ok = [e for e in events if e["status"] == "ok"]
    errors = [e for e in events if e["status"] == "error"]
    assert 0.005 < len(errors) / N < 0.05 and all(e["error_type"] and e["output_text"] is None for e in errors)
    assert {e["request_model"] for e in events} == set(MODELS)
    assert any(len(e["input_messages"]) >= 3 for e in events)  # multi-turn
    for e in ok:
        price = MODELS[e["request_model"]]
        assert e["cost_usd"] <= (e["input_tokens"] * price.price_in + e["output_tokens"] * price.price_out) / 1e6 + 1e-9
        assert 0 < e["time_to_first_token_ms"] < e["latency_ms"]
        assert len(e["trace_id"]) == 32 and len(e["span_id"]) == 16
    by_model = {m: statistics.median(e["time_to_first_token_ms"] for e in ok if e["request_model"] == m) for m in MODELS}
    assert by_model["gpt-4o-mini"] < by_model["claude-3-5-sonnet"]
    prompts = [e["input_messages"][-1]["content"] for e in events]
    assert len(set(prompts)) > 0.5 * N  # varied texts, not a handful of templates


def test_run_produces_to_kafka(kafka_bootstrap: str) -> None:
    from tests.streams.client.test_producer import consume

    topic = f"test.generator.{uuid.uuid4().hex[:8]}"
    stats = asyncio.run(Generator(seed=2).run(kafka_bootstrap, topic, rate=5000, count=600, malformed_ratio=0.1,
                                               progress=False, partitions=2))
    assert (stats.produced, stats.delivered, stats.failed) == (600, 600, 0)
    records = asyncio.run(consume(kafka_bootstrap, topic, 600))
    assert len(records) == 600
    codec = EventCodec()
    valid = 0
    for r in records:
        try:
            codec.decode(r.value)
            valid += 1
        except DecodeError:
            pass
    assert valid == 600 - sum(v for k, v in stats.by_kind.items() if k in MALFORMED_KINDS)


def test_run_paces_to_the_rate(kafka_bootstrap: str) -> None:
    topic = f"test.generator.{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics_async(kafka_bootstrap, {topic: 1}))
    stats = asyncio.run(Generator(seed=2).run(kafka_bootstrap, topic, rate=100, duration_s=2.0, progress=False,
                                               partitions=None))
    assert 150 <= stats.produced <= 210


def test_cli_generate(kafka_bootstrap: str) -> None:
    topic = f"test.generator.{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(cli_app, ["generate", "--count", "300", "--rate", "3000", "--bootstrap", kafka_bootstrap,
                                          "--topic", topic, "--no-progress", "--seed", "1"])
    assert result.exit_code == 0, result.output
