"""OTLP trace messages -> llm_call records (streams/pipeline/otlp.py), without Kafka or a Collector."""
from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from streams.pipeline.codec import DecodeError
from streams.pipeline.otlp import decode_traces, log_content
from streams.storage.rows import LLM_CALL_COLUMNS, llm_call_row

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
START = 1_764_664_000_000_000_000


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list):
        out = AnyValue()
        out.array_value.values.extend(_value(x) for x in v)
        return out
    return AnyValue(string_value=v)


def _kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in attrs.items()]


def request(*spans: dict[str, Any], service: str = "chat-app") -> ExportTraceServiceRequest:
    """One resource with ``service``; each span given as {attrs, events, status, span_id, ms}."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(_kvs({"service.name": service, "deployment.environment.name": "staging"}))
    scope = rs.scope_spans.add()
    for i, spec in enumerate(spans):
        span = scope.spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(spec.get("span_id", f"{i + 1:016x}")),
                               name="chat", start_time_unix_nano=START, end_time_unix_nano=START + spec.get("ms", 250) * 1_000_000)
        span.attributes.extend(_kvs(spec.get("attrs", {})))
        for name, attrs in spec.get("events", []):
            span.events.add(name=name, time_unix_nano=START).attributes.extend(_kvs(attrs))
        if "status" in spec:
            span.status.CopyFrom(spec["status"])
    return req


def one(*spans: dict[str, Any], **kw: Any) -> dict[str, Any]:
    batch = decode_traces(request(*spans, **kw).SerializeToString())
    assert len(batch.records) == 1, batch
    return batch.records[0]


BASIC = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5,
    "gen_ai.response.finish_reasons": ["stop"], "gen_ai.prompt.name": "greeting", "gen_ai.conversation.id": "conv-1",
    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi there"}]}]),
    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Hello!"}],
                                           "finish_reason": "stop"}]),
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
    "server.address": "api.openai.com", "user.id": "u-7",
}


def test_proto_span_maps_every_field() -> None:
    r = one({"attrs": BASIC, "span_id": SPAN})
    assert (r["service_name"], r["deployment_environment"], r["provider_name"]) == ("chat-app", "staging", "openai")
    assert (r["operation_name"], r["request_model"], r["response_model"]) == ("chat", "gpt-4o", "gpt-4o-2024-08-06")
    assert (r["input_tokens"], r["output_tokens"], r["finish_reason"]) == (12, 5, "stop")
    assert r["input_messages"] == [{"role": "user", "content": "Hi there"}]
    assert (r["output_text"], r["system_instructions"]) == ("Hello!", "Be brief.")
    assert (r["prompt_name"], r["conversation_id"], r["user_id"]) == ("greeting", "conv-1", "u-7")
    assert (r["trace_id"], r["span_id"], r["event_id"]) == (TRACE, SPAN, f"otlp-{TRACE}-{SPAN}")
    assert (r["timestamp_ms"], r["latency_ms"], r["status"]) == (START // 1_000_000, 250.0, "ok")
    assert r["attributes"]["server.address"] == "api.openai.com"


def test_record_becomes_an_llm_calls_row() -> None:
    row = llm_call_row(one({"attrs": BASIC}), 0, "otlp_spans", 2, 40)
    assert len(row) == len(LLM_CALL_COLUMNS)
    assert dict(zip([c for c, _ in LLM_CALL_COLUMNS], row))["input_contents"] == ["Hi there"]


def test_json_with_hex_ids_and_string_ints() -> None:
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-app"}}]},
                              "scopeSpans": [{"spans": [{
                                  "traceId": TRACE, "spanId": SPAN, "parentSpanId": "", "name": "chat",
                                  "startTimeUnixNano": str(START), "endTimeUnixNano": str(START + 1_500_000_000),
                                  "status": {"code": 2, "message": "boom"},
                                  "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "claude"}},
                                                 {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}}]}]}]}]}
    r = decode_traces(json.dumps(doc).encode()).records[0]
    assert (r["trace_id"], r["span_id"], r["service_name"]) == (TRACE, SPAN, "js-app")
    assert (r["input_tokens"], r["latency_ms"]) == (42, 1500.0)
    assert (r["status"], r["error_type"]) == ("error", "boom")


def test_error_type_attribute_wins_over_status() -> None:
    r = one({"attrs": {**BASIC, "error.type": "timeout"}, "status": Status(code=Status.STATUS_CODE_ERROR, message="x")})
    assert (r["status"], r["error_type"]) == ("error", "timeout")


def test_content_on_a_details_event() -> None:
    attrs = {k: v for k, v in BASIC.items() if not k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system_"))}
    event = ("gen_ai.client.inference.operation.details", {k: BASIC[k] for k in ("gen_ai.input.messages", "gen_ai.output.messages")})
    r = one({"attrs": attrs, "events": [event]})
    assert (r["input_messages"][0]["content"], r["output_text"]) == ("Hi there", "Hello!")


def test_older_per_message_events() -> None:
    events = [("gen_ai.system.message", {"content": "Be brief."}), ("gen_ai.user.message", {"content": "Hi"}),
              ("gen_ai.choice", {"finish_reason": "length", "message": json.dumps({"content": "Hel"})})]
    r = one({"attrs": {"gen_ai.system": "anthropic", "gen_ai.request.model": "claude"}, "events": events})
    assert r["provider_name"] == "anthropic"
    assert [m["role"] for m in r["input_messages"]] == ["system", "user"]
    assert r["finish_reason"] == "length"


def test_older_indexed_prompt_and_completion_attributes() -> None:
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5", "gen_ai.usage.prompt_tokens": 9,
             "gen_ai.usage.completion_tokens": 3, "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "Be nice.",
             "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Hello", "gen_ai.completion.0.role": "assistant",
             "gen_ai.completion.0.content": "Hi!", "gen_ai.completion.0.finish_reason": "stop"}
    r = one({"attrs": attrs})
    assert r["input_messages"] == [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hello"}]
    assert (r["output_text"], r["finish_reason"], r["input_tokens"], r["output_tokens"]) == ("Hi!", "stop", 9, 3)
    assert "gen_ai.prompt.1.content" not in r["attributes"]


def test_openllmetry_llm_attributes() -> None:
    attrs = {"llm.vendor": "OpenAI", "llm.request.type": "completion", "llm.request.model": "davinci",
             "llm.usage.prompt_tokens": 4, "llm.usage.completion_tokens": 6, "llm.prompts.0.content": "Say hi",
             "llm.completions.0.content": "hi"}
    r = one({"attrs": attrs})
    assert (r["provider_name"], r["operation_name"], r["request_model"]) == ("OpenAI", "text_completion", "davinci")
    assert (r["input_messages"], r["output_text"], r["input_tokens"], r["output_tokens"]) == (
        [{"role": "user", "content": "Say hi"}], "hi", 4, 6)


def test_content_from_log_records_joined_by_span() -> None:
    logs = ExportLogsServiceRequest()
    rec = logs.resource_logs.add().scope_logs.add().log_records.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN))
    rec.attributes.extend(_kvs({"event.name": "gen_ai.user.message"}))
    rec.body.kvlist_value.values.add(key="content", value=AnyValue(string_value="from a log"))
    joined = log_content(logs.SerializeToString())
    batch = decode_traces(request({"attrs": {"gen_ai.request.model": "m"}, "span_id": SPAN}).SerializeToString(), logs=joined)
    assert batch.records[0]["input_messages"] == [{"role": "user", "content": "from a log"}]


def test_non_genai_spans_are_skipped_and_counted() -> None:
    batch = decode_traces(request({"attrs": {"http.method": "GET"}}, {"attrs": BASIC}, {"attrs": {}}).SerializeToString())
    assert (len(batch.records), batch.skipped) == (1, 2)


def test_invalid_genai_span_is_rejected_alone() -> None:
    batch = decode_traces(request({"attrs": {**BASIC, "gen_ai.usage.input_tokens": -1}}, {"attrs": BASIC}).SerializeToString())
    assert len(batch.records) == 1 and [e.reason for e in batch.rejected] == ["invalid_value"]


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty"),
    (b"\x0a\xff\xff\xff", "bad_otlp_proto"),
    (b"{not json", "bad_otlp_json"),
    (b'{"resourceSpans": 3}', "bad_otlp_json"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "bad_otlp_id"),
])
def test_malformed_batch_gives_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_traces(raw)
    assert info.value.reason == reason


def test_processor_rows_and_dead_letters() -> None:
    from streams.pipeline.ingest import RawMessage
    from streams.pipeline.otlp import OtlpProcessor

    good = request({"attrs": BASIC}, {"attrs": {"http.method": "GET"}}).SerializeToString()
    half = request({"attrs": {**BASIC, "gen_ai.usage.output_tokens": "many"}}, {"attrs": BASIC}).SerializeToString()
    out = OtlpProcessor("otlp_spans").process([RawMessage(None, good, 0, 1), RawMessage(b"k", b"{oops", 0, 2),
                                               RawMessage(None, half, 0, 3)])
    assert (len(out.rows), out.spans, out.skipped) == (2, 2, 1)
    assert [(d.reason, d.offset, d.topic) for d in out.dead_letters] == [("bad_otlp_json", 2, "otlp_spans"),
                                                                          ("invalid_value", 3, "otlp_spans")]
    assert {r[-3] for r in out.rows} == {"otlp_spans"}


def test_storage_rejected_rows_dead_letter_their_message_once() -> None:
    from streams.pipeline.ingest import RawMessage
    from streams.pipeline.otlp import OtlpProcessor

    msg = RawMessage(None, request({"attrs": BASIC}, {"attrs": BASIC}).SerializeToString(), 1, 9)
    proc = OtlpProcessor("otlp_spans")
    rows = proc.process([msg]).rows
    dead = proc.storage_rejected([msg], [(rows[0], "too big"), (rows[1], "too big")])
    assert [(d.reason, d.partition, d.offset) for d in dead] == [("storage_rejected", 1, 9)]


def test_agent_is_off_without_topics() -> None:
    from types import SimpleNamespace

    from streams.agents.otlp import register
    from streams.config import Settings

    assert register(None, SimpleNamespace(settings=Settings(otlp_topics=""))) is None  # type: ignore[arg-type]


def test_topics_are_created_when_set() -> None:
    from streams.config import Settings
    from streams.kafka.topics import topic_partitions

    topics = topic_partitions(Settings(otlp_topics="otlp_spans, otlp_json", topic_partitions=3))
    assert (topics["otlp_spans"], topics["otlp_json"]) == (3, 3)
    assert Settings.from_env({"LLMWATCH_OTLP_TOPICS": "a,b"}).otlp_topics == "a,b"


def test_doctests() -> None:
    import doctest

    import streams.agents.otlp
    import streams.devtools.otelcol
    import streams.pipeline.otlp

    for module in (streams.pipeline.otlp, streams.agents.otlp, streams.devtools.otelcol):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_openinference_llm_attributes() -> None:
    attrs = {"llm.provider": "openai", "llm.model_name": "gpt-4o-mini", "llm.token_count.prompt": 8,
             "llm.token_count.completion": 2, "llm.input_messages.0.message.role": "user",
             "llm.input_messages.0.message.content": "Ping", "llm.output_messages.0.message.role": "assistant",
             "llm.output_messages.0.message.content": "Pong"}
    r = one({"attrs": attrs})
    assert (r["provider_name"], r["request_model"], r["input_tokens"], r["output_tokens"]) == ("openai", "gpt-4o-mini", 8, 2)
    assert (r["input_messages"], r["output_text"]) == ([{"role": "user", "content": "Ping"}], "Pong")
    assert not any(k.startswith("llm.input_messages") for k in r["attributes"])
