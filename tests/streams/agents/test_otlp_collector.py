"""The real chain: opentelemetry-sdk spans -> OTLP/HTTP -> a real Collector -> kafkaexporter
(otlp_proto, and otlp_json on a second pipeline) -> the real broker -> the llmwatch worker -> llm_calls;
and spans whose content travels as log records on the logs topic, joined by trace and span id.

The Collector is built from Go modules on first use (about 2 minutes, then cached); without Go
the test fails with the fix, it does not skip.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from streams.devtools.kafka_local import create_topics
from streams.devtools.otelcol import CollectorSetupError, LocalCollector, ensure_otelcol
from streams.kafka.lag import wait_caught_up
from streams.kafka.topics import ensure_topics
from tests.streams.worker_harness import WorkerProcess, consume_all, query, unique_settings

COLUMNS = ("service_name, deployment_environment, provider_name, operation_name, request_model, response_model, "
           "prompt_name, input_roles, input_contents, system_instructions, output_text, finish_reason, input_tokens, "
           "output_tokens, latency_ms, status, error_type, conversation_id, trace_id, span_id, schema_id, kafka_topic")


@pytest.fixture(scope="module")
def otelcol_binary() -> Path:
    try:
        return ensure_otelcol()
    except CollectorSetupError as exc:
        pytest.fail(f"OpenTelemetry Collector unavailable: {str(exc).splitlines()[0]}", pytrace=False)


@pytest.fixture()
def chain(kafka_bootstrap: str, otelcol_binary: Path, tmp_path: Path) -> Iterator[tuple]:
    """Topics, a Collector with a proto and a json pipeline, and a running worker."""
    tag = tmp_path.name[-8:].replace("_", "")
    proto, js = f"otlp-proto-{tag}", f"otlp-json-{tag}"
    settings = unique_settings(kafka_bootstrap, tmp_path / "home", otlp_topics=f"{proto},{js}", detectors="injection",
                               topic_partitions=1)
    ensure_topics(settings)
    with LocalCollector(kafka_bootstrap, {proto: "otlp_proto", js: "otlp_json"}, binary=otelcol_binary) as collector:
        worker = WorkerProcess(settings).start()
        try:
            yield settings, collector, worker, proto, js
        finally:
            worker.stop()


def tracer(endpoint: str, service: str) -> tuple[TracerProvider, object]:
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=10)))
    return provider, provider.get_tracer("test-app")


def emit_current_convention(endpoint: str) -> tuple[str, str]:
    """A chat span with content on attributes and on a details event, plus an HTTP span (skipped)."""
    provider, t = tracer(endpoint, "otel-chat")
    with t.start_as_current_span("chat gpt-4o") as span:
        span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                             "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                             "gen_ai.usage.input_tokens": 21, "gen_ai.usage.output_tokens": 7,
                             "gen_ai.response.finish_reasons": ["stop"], "gen_ai.prompt.name": "support",
                             "gen_ai.conversation.id": "conv-9",
                             "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}])})
        span.add_event("gen_ai.client.inference.operation.details", {
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "On its way."}],
                                                   "finish_reason": "stop"}])})
        time.sleep(0.02)
        ids = (format(span.get_span_context().trace_id, "032x"), format(span.get_span_context().span_id, "016x"))
    with t.start_as_current_span("GET /orders") as http:
        http.set_attribute("http.request.method", "GET")
    provider.shutdown()
    return ids


def emit_older_convention(endpoint: str) -> tuple[str, str]:
    """An errored completion span in the older gen_ai.prompt.N / completion.N convention."""
    provider, t = tracer(endpoint, "legacy-bot")
    with t.start_as_current_span("anthropic.chat") as span:
        span.set_attributes({"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-3-5-sonnet",
                             "gen_ai.usage.prompt_tokens": 11, "gen_ai.usage.completion_tokens": 2,
                             "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Summarise this.",
                             "gen_ai.completion.0.content": "Sure", "error.type": "overloaded_error"})
        span.set_status(Status(StatusCode.ERROR, "529"))
        ids = (format(span.get_span_context().trace_id, "032x"), format(span.get_span_context().span_id, "016x"))
    provider.shutdown()
    return ids


def test_spans_through_a_real_collector_land_in_llm_calls(chain: tuple) -> None:
    settings, collector, worker, proto, js = chain
    current = emit_current_convention(collector.traces_url(proto))
    older = emit_older_convention(collector.traces_url(js))
    for topic in (proto, js):  # the Collector exported them (batch timeout 200 ms)
        assert asyncio.run(consume_all(settings.kafka_bootstrap, topic, 1, timeout_s=30)), f"nothing on {topic}"
    group = f"{settings.consumer_group}-otlp"
    assert asyncio.run(wait_caught_up(settings.kafka_bootstrap, group, [proto, js], 60, keep_waiting=worker.alive)), \
        worker.log_text()[-3000:]
    worker.wait_caught_up(timeout=120)  # the bridged events: stored, and through the detectors
    worker.stop()
    rows = {r[-3]: dict(zip([c.strip() for c in COLUMNS.split(",")], r))
            for r in query(settings, f"SELECT {COLUMNS} FROM llm_calls ORDER BY timestamp")}
    assert len(rows) == 2, rows  # the HTTP span was skipped
    a, b = rows[current[1]], rows[older[1]]
    # republished as native JSON events on the calls topic, so they took the SDK's path
    assert (a["kafka_topic"], a["trace_id"], a["schema_id"]) == (settings.calls_topic, current[0], 0)
    assert (a["service_name"], a["deployment_environment"], a["provider_name"]) == ("otel-chat", "test", "openai")
    assert (a["operation_name"], a["request_model"], a["response_model"]) == ("chat", "gpt-4o", "gpt-4o-2024-08-06")
    assert (a["prompt_name"], a["conversation_id"], a["finish_reason"]) == ("support", "conv-9", "stop")
    assert (a["input_roles"], a["input_contents"]) == (["user"], ["Where is my order?"])
    assert (a["system_instructions"], a["output_text"]) == ("Be brief.", "On its way.")
    assert (a["input_tokens"], a["output_tokens"], a["status"], a["error_type"]) == (21, 7, "ok", "")
    assert a["latency_ms"] >= 20.0
    assert (b["kafka_topic"], b["trace_id"]) == (settings.calls_topic, older[0])
    assert (b["service_name"], b["provider_name"], b["request_model"]) == ("legacy-bot", "anthropic", "claude-3-5-sonnet")
    assert (b["input_roles"], b["input_contents"], b["output_text"]) == (["user"], ["Summarise this."], "Sure")
    assert (b["input_tokens"], b["output_tokens"], b["status"], b["error_type"]) == (11, 2, "error", "overloaded_error")
    # and through the detectors, like an event sent with the SDK
    verdicts = query(settings, "SELECT event_id FROM detections FINAL WHERE detector = 'injection' ORDER BY event_id")
    assert verdicts == sorted([(f"otlp-{current[0]}-{current[1]}",), (f"otlp-{older[0]}-{older[1]}",)])


def test_without_go_the_build_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no go on it
    with pytest.raises(CollectorSetupError, match="go not found: install Go 1.26"):
        ensure_otelcol(cache_dir=tmp_path / "cache")


@pytest.fixture()
def logs_chain(kafka_bootstrap: str, otelcol_binary: Path, tmp_path: Path) -> Iterator[tuple]:
    """A Collector sending spans and logs to two topics of 2 partitions each, a worker joining them and
    publishing its verdicts as OTel evaluation records, and the Collector reading those back
    (kafka receiver) and exporting them as otlp_json."""
    tag = tmp_path.name[-8:].replace("_", "")
    spans, logs, evals = f"otlp-spans-{tag}", f"otlp-logs-{tag}", f"otlp-evals-{tag}"
    settings = unique_settings(kafka_bootstrap, tmp_path / "home", otlp_topics=spans, otlp_logs_topic=logs,
                               evaluations_topic=evals, detectors="injection", topic_partitions=2)
    ensure_topics(settings)
    create_topics(kafka_bootstrap, {f"{evals}-json": 1})
    with LocalCollector(kafka_bootstrap, {spans: "otlp_proto"}, logs_topic=logs, relay_logs=(evals, f"{evals}-json"),
                        binary=otelcol_binary) as collector:
        worker = WorkerProcess(settings).start()
        try:
            yield settings, collector, worker, spans, logs, evals
        finally:
            worker.stop()


def emit_content_as_logs(collector: LocalCollector, n: int) -> list[tuple[str, str]]:
    """``n`` chat spans with no content on them; each span's messages go out as a details log
    record in the span's context (the newer conventions' opt-in content capture)."""
    provider, t = tracer(collector.traces_url(), "otel-logs")
    logger_provider = LoggerProvider(resource=Resource.create({"service.name": "otel-logs"}))
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=collector.logs_url(), timeout=10)))
    logger = logger_provider.get_logger("test-app")
    ids = []
    for i in range(n):
        with t.start_as_current_span("chat gpt-4o") as span:
            span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                 "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5 + i,
                                 "gen_ai.usage.output_tokens": 3})
            logger.emit(event_name="gen_ai.client.inference.operation.details", attributes={
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"Question {i}?"}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": f"Answer {i}."}],
                                                       "finish_reason": "stop"}])})
            ids.append((format(span.get_span_context().trace_id, "032x"), format(span.get_span_context().span_id, "016x")))
    provider.shutdown()
    logger_provider.shutdown()
    return ids


def test_content_sent_as_log_records_is_joined_to_its_span(logs_chain: tuple) -> None:
    settings, collector, worker, spans, logs, _ = logs_chain
    ids = emit_content_as_logs(collector, 6)
    group = f"{settings.consumer_group}-otlp"
    for topic in (spans, logs):
        assert asyncio.run(consume_all(settings.kafka_bootstrap, topic, 1, timeout_s=30)), f"nothing on {topic}"
    assert asyncio.run(wait_caught_up(settings.kafka_bootstrap, group, [spans, logs], 60, keep_waiting=worker.alive)), \
        worker.log_text()[-3000:]
    worker.wait_caught_up(timeout=120)
    worker.stop()
    rows = query(settings, "SELECT span_id, trace_id, input_contents, output_text, finish_reason, input_tokens "
                           "FROM llm_calls ORDER BY input_tokens")
    assert [(r[0], r[1]) for r in rows] == [(s, t) for t, s in ids]  # each span once, none lost
    assert [(r[2], r[3], r[4]) for r in rows] == [([f"Question {i}?"], f"Answer {i}.", "stop") for i in range(6)]
    verdicts = query(settings, "SELECT count() FROM detections FINAL WHERE detector = 'injection'")
    assert verdicts == [(6,)]  # and the detectors saw the joined content


def evaluation_records(messages: list) -> list[dict]:
    """The log records of otlp_json messages, attributes flattened."""
    out = []
    for m in messages:
        for rl in json.loads(m.value)["resourceLogs"]:
            service = {a["key"]: a["value"].get("stringValue") for a in rl["resource"]["attributes"]}["service.name"]
            for sl in rl["scopeLogs"]:
                for rec in sl["logRecords"]:
                    attrs = {a["key"]: next(iter(a["value"].values())) for a in rec["attributes"]}
                    out.append({**attrs, "event": rec.get("eventName"), "trace": rec.get("traceId"), "span": rec.get("spanId"),
                                "service": service, "scope": sl["scope"]["name"]})
    return out


def test_verdicts_reach_a_collector_as_genai_evaluation_results(logs_chain: tuple) -> None:
    settings, collector, worker, spans, logs, evals = logs_chain
    ids = emit_content_as_logs(collector, 3)
    deadline = time.monotonic() + 120  # the worker loads its model, judges, publishes; the Collector relays
    while True:
        records = evaluation_records(asyncio.run(consume_all(settings.kafka_bootstrap, f"{evals}-json", 1, timeout_s=60)))
        if {(r["trace"], r["span"]) for r in records} >= set(ids) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {(r["trace"], r["span"]) for r in records} == set(ids), records  # parented to each call's span
    for r in records:
        assert (r["event"], r["scope"], r["service"]) == ("gen_ai.evaluation.result", "llmwatch", "otel-logs")
        assert r["gen_ai.evaluation.name"] == "llmwatch.injection"
        assert 0.0 <= r["gen_ai.evaluation.score.value"] <= 1.0 and r["gen_ai.evaluation.score.label"] in ("pass", "flagged")
        assert r["llmwatch.event_id"] == f"otlp-{r['trace']}-{r['span']}" and r["gen_ai.evaluation.explanation"]
