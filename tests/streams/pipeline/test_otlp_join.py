"""Spans joined with their content log records (streams/pipeline/otlp_join.py), without Kafka."""
from __future__ import annotations

import json

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from streams.pipeline.ingest import RawMessage
from streams.pipeline.otlp import CONTENT_KEYS, DETAILS_EVENT, OtlpProcessor
from streams.pipeline.otlp_join import OtlpJoin
from tests.streams.pipeline.test_otlp import BASIC, TRACE, _kvs, request

SPANS, LOGS = "otlp_spans", "otlp_logs"
WAIT = 2.0
BARE = {k: v for k, v in BASIC.items() if k not in CONTENT_KEYS}  # a GenAI span whose content went to the logs
CONTENT = {"gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is it?"}]}]),
           "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Here."}],
                                                  "finish_reason": "stop"}])}


def logs_message(*span_ids: str, offset: int = 0, event: str = DETAILS_EVENT) -> RawMessage:
    """A logs export with one content record per span id (the event name as ``event_name``)."""
    req = ExportLogsServiceRequest()
    scope = req.resource_logs.add().scope_logs.add()
    for span_id in span_ids:
        rec = scope.log_records.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(span_id), event_name=event)
        rec.attributes.extend(_kvs(CONTENT))
    return RawMessage(None, req.SerializeToString(), 0, offset)


def spans_message(*span_ids: str, offset: int = 0, attrs: dict | None = None) -> RawMessage:
    """A traces export with one GenAI span per id, without content unless ``attrs`` brings it."""
    specs = [{"attrs": {**BARE, **(attrs or {})}, "span_id": s} for s in span_ids]
    return RawMessage(None, request(*specs).SerializeToString(), 0, offset)


def new_join() -> OtlpJoin:
    return OtlpJoin({SPANS: OtlpProcessor(SPANS)}, LOGS, WAIT)


def contents(released) -> list[tuple[str, str]]:
    out = []
    for _, value in released.events:
        event = json.loads(value)
        out.append((event["span_id"], event["output_text"]))
    return sorted(out)


def test_span_first_waits_for_its_logs_and_takes_their_content() -> None:
    join = new_join()
    join.add(1, SPANS, [spans_message("00000000000000a1")], now=0.0)
    assert join.release(now=0.5).events == [] and join.is_open(1)
    join.add(2, LOGS, [logs_message("00000000000000a1")], now=0.6)
    released = join.release(now=0.6)
    assert contents(released) == [("00000000000000a1", "Here.")]
    assert (released.joined, released.unjoined, join.is_open(1), join.is_open(2)) == (1, 0, False, False)


def test_logs_first_wait_for_their_span() -> None:
    join = new_join()
    join.add(1, LOGS, [logs_message("00000000000000b1")], now=0.0)
    assert join.is_open(1) and join.next_deadline() == WAIT
    join.add(2, SPANS, [spans_message("00000000000000b1")], now=1.0)
    released = join.release(now=1.0)
    assert contents(released) == [("00000000000000b1", "Here.")] and released.joined == 1
    assert not join.is_open(1) and not join.is_open(2) and join.next_deadline() is None


def test_span_with_its_own_content_is_released_at_once() -> None:
    join = new_join()
    join.add(1, SPANS, [spans_message("00000000000000c1", attrs=CONTENT)], now=0.0)
    released = join.release(now=0.0)
    assert contents(released) == [("00000000000000c1", "Here.")] and not join.is_open(1)


def test_a_span_whose_logs_never_come_is_released_without_content_when_its_wait_ends() -> None:
    join = new_join()
    join.add(1, SPANS, [spans_message("00000000000000d1")], now=0.0)
    assert join.release(now=WAIT - 0.01).events == [] and join.is_open(1)
    released = join.release(now=WAIT)
    assert contents(released) == [("00000000000000d1", None)] and released.unjoined == 1 and not join.is_open(1)


def test_logs_whose_span_never_comes_are_dropped_and_counted() -> None:
    join = new_join()
    join.add(1, LOGS, [logs_message("00000000000000e1", "00000000000000e2")], now=0.0)
    released = join.release(now=WAIT)
    assert (released.events, released.orphan_logs, join.is_open(1)) == ([], 2, False)


def test_a_batch_stays_open_while_any_of_its_spans_waits() -> None:
    join = new_join()
    join.add(1, SPANS, [spans_message("00000000000000f1", "00000000000000f2", offset=1)], now=0.0)
    join.add(2, LOGS, [logs_message("00000000000000f1")], now=0.1)
    assert len(join.release(now=0.1).events) == 1
    assert join.is_open(1) and not join.is_open(2)  # f2 still waits: batch 1 must not be committed
    assert len(join.release(now=0.0 + WAIT).events) == 1 and not join.is_open(1)


def test_flush_releases_everything_waiting() -> None:
    join = new_join()
    join.add(1, SPANS, [spans_message("0000000000000101")], now=0.0)
    join.add(1, LOGS, [logs_message("0000000000000102")], now=0.0)
    released = join.release(now=0.0, flush=True)
    assert (len(released.events), released.unjoined, released.orphan_logs, join.is_open(1)) == (1, 1, 1, False)


def test_unreadable_messages_and_invalid_spans_become_dead_letters() -> None:
    join = new_join()
    join.add(1, LOGS, [RawMessage(b"k", b"\x0a\xff\xff\xff", 0, 7)], now=0.0)
    join.add(1, SPANS, [RawMessage(None, b"{oops", 0, 8),
                        spans_message("0000000000000201", offset=9, attrs={"gen_ai.usage.input_tokens": -1})], now=0.0)
    join.add(2, LOGS, [logs_message("0000000000000201")], now=0.1)  # releases the invalid span: rejected then
    released = join.release(now=0.1)
    assert released.events == []
    assert [(d.reason, d.topic, d.offset) for d in released.dead_letters] == [
        ("bad_otlp_proto", LOGS, 7), ("bad_otlp_json", SPANS, 8), ("invalid_value", SPANS, 9)]
    assert not join.is_open(1) and not join.is_open(2)


def test_non_genai_spans_are_skipped_and_never_wait() -> None:
    join = new_join()
    join.add(1, SPANS, [RawMessage(None, request({"attrs": {"http.method": "GET"}}).SerializeToString(), 0, 1)], now=0.0)
    released = join.release(now=0.0)
    assert (released.skipped, released.events, join.is_open(1)) == (1, [], False)


def test_doctest() -> None:
    import doctest

    import streams.pipeline.otlp_join

    assert doctest.testmod(streams.pipeline.otlp_join).failed == 0


def test_logs_topic_needs_span_topics_and_is_created() -> None:
    from types import SimpleNamespace

    import pytest

    from streams.agents.otlp import register
    from streams.config import Settings
    from streams.kafka.topics import topic_partitions

    with pytest.raises(ValueError, match="name the spans topic"):
        register(None, SimpleNamespace(settings=Settings(otlp_logs_topic=LOGS)))  # type: ignore[arg-type]
    topics = topic_partitions(Settings(otlp_topics=SPANS, otlp_logs_topic=LOGS, topic_partitions=3))
    assert (topics[SPANS], topics[LOGS]) == (3, 3)  # co-partitioned: equal counts
    assert Settings.from_env({"LLMWATCH_OTLP_LOGS_TOPIC": "l", "LLMWATCH_OTLP_JOIN_WAIT_S": "0.5"}).otlp_join_wait_s == 0.5
