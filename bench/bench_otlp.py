"""OTLP ingest benchmark: GenAI spans/s decoded and stored, beside the native Avro path, same run.

    .venv/bin/python bench/bench_otlp.py [--events 20000] [--spans-per-message 100] [--repeats 3]

The same generated calls are encoded three ways: native Confluent Avro (one event per message,
as the SDK sends them), and OTLP ``ExportTraceServiceRequest`` messages of ``--spans-per-message``
GenAI spans each (what the Collector's batch processor and kafkaexporter write), as
``otlp_proto`` and ``otlp_json``. Each path runs what its agent runs on the decode thread
(:class:`~streams.pipeline.ingest.IngestProcessor` / :class:`~streams.pipeline.otlp.OtlpProcessor`:
decode, validate, redact, build rows) and then inserts the rows into ``llm_calls`` in the
embedded ClickHouse engine through :class:`~streams.storage.sink.ClickHouseSink`, in batches of
2,000 rows as the worker does. Kafka is left out: it moves bytes the same way for every path.
Paths alternate within each repeat (the machine is shared); medians are reported. A second table
times the bridge's decode thread with the content on the spans against content sent as log records
and joined (:class:`~streams.pipeline.otlp_join.OtlpJoin`).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from aiokafka import AIOKafkaProducer  # noqa: E402

from bench._machine import machine  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.devtools.kafka_local import LocalKafka, create_topics, free_port  # noqa: E402
from streams.devtools.supervisor import WorkerProcess  # noqa: E402
from streams.kafka.lag import LagReader  # noqa: E402
from streams.devtools.generator import Generator  # noqa: E402
from streams.pipeline.codec import EventCodec  # noqa: E402
from streams.pipeline.ingest import IngestProcessor, RawMessage  # noqa: E402
from streams.pipeline.otlp import CONTENT_KEYS, DETAILS_EVENT, OtlpProcessor  # noqa: E402
from streams.pipeline.otlp_join import OtlpJoin  # noqa: E402
from streams.pipeline.redaction import Redactor  # noqa: E402
from streams.storage.clickhouse import connect, migrate  # noqa: E402
from streams.storage.rows import LLM_CALL_COLUMNS  # noqa: E402
from streams.storage.sink import ClickHouseSink  # noqa: E402

BATCH = 2000
REDACT = "emails,api_keys,cards,phones"  # the worker's default rules


def native_records(n: int) -> tuple[list[bytes], list[dict[str, Any]]]:
    """``n`` generator calls as Confluent Avro messages and as decoded records."""
    codec = EventCodec()
    now = int(time.time() * 1000)
    raws = [m.value for m in Generator(seed=1, rate=1e9).messages(n, malformed_ratio=0.0, json_ratio=0.0, clock_ms=lambda: now)]
    return raws, [codec.decode(r).record for r in raws]


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def span_attributes(r: dict[str, Any]) -> list[KeyValue]:
    """A record as current-convention GenAI span attributes, content included."""
    messages = [{"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in r["input_messages"]]
    output = [{"role": "assistant", "parts": [{"type": "text", "content": r["output_text"] or ""}],
               "finish_reason": r["finish_reason"] or "stop"}]
    attrs = {"gen_ai.operation.name": r["operation_name"], "gen_ai.provider.name": r["provider_name"] or "openai",
             "gen_ai.request.model": r["request_model"], "gen_ai.response.model": r["response_model"] or r["request_model"],
             "gen_ai.usage.input_tokens": r["input_tokens"], "gen_ai.usage.output_tokens": r["output_tokens"],
             "gen_ai.input.messages": json.dumps(messages), "gen_ai.output.messages": json.dumps(output)}
    if r["system_instructions"]:
        attrs["gen_ai.system_instructions"] = json.dumps([{"type": "text", "content": r["system_instructions"]}])
    return [_kv(k, v) for k, v in attrs.items()]


def otlp_messages(records: list[dict[str, Any]], per_message: int) -> list[bytes]:
    """Records as ExportTraceServiceRequest messages of ``per_message`` spans (one resource each)."""
    out = []
    for start in range(0, len(records), per_message):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(_kv("service.name", records[start]["service_name"]))
        scope = rs.scope_spans.add()
        for i, r in enumerate(records[start:start + per_message], start):
            t0 = r["timestamp_ms"] * 1_000_000
            span = scope.spans.add(trace_id=i.to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"), name="chat",
                                   start_time_unix_nano=t0, end_time_unix_nano=t0 + int(r["latency_ms"] * 1e6))
            span.attributes.extend(span_attributes(r))
        out.append(req.SerializeToString())
    return out


def content_as_logs(records: list[dict[str, Any]], per_message: int) -> list[tuple[bytes, bytes]]:
    """(spans without content, the logs carrying it) message pairs: the event-based conventions,
    one ``gen_ai.client.inference.operation.details`` log record per span."""
    out = []
    for start, spans in zip(range(0, len(records), per_message), otlp_messages(records, per_message)):
        req = ExportTraceServiceRequest.FromString(spans)
        logs = ExportLogsServiceRequest()
        scope = logs.resource_logs.add().scope_logs.add()
        for span in req.resource_spans[0].scope_spans[0].spans:
            content = [kv for kv in span.attributes if kv.key in CONTENT_KEYS]
            kept = [kv for kv in span.attributes if kv.key not in CONTENT_KEYS]
            del span.attributes[:]
            span.attributes.extend(kept)
            scope.log_records.add(trace_id=span.trace_id, span_id=span.span_id, event_name=DETAILS_EVENT).attributes.extend(content)
        out.append((req.SerializeToString(), logs.SerializeToString()))
    return out


def bridge_rates(records: list[dict[str, Any]], per_message: int, repeats: int) -> dict[str, float]:
    """GenAI spans/s through the bridge's decode thread (spans -> native events for the calls topic),
    content on the spans vs content in log records joined by :class:`OtlpJoin`; medians, alternated."""
    with_content = otlp_messages(records, per_message)
    pairs = content_as_logs(records, per_message)
    redactor = Redactor.from_names(REDACT)
    per_batch = max(1, BATCH // per_message)

    def attributes() -> int:
        processor = OtlpProcessor("otlp_spans", redactor)
        return sum(processor.process([RawMessage(None, m, 0, i) for i, m in enumerate(with_content[s:s + per_batch], s)],
                                     bridge=True).spans for s in range(0, len(with_content), per_batch))

    def joined() -> int:
        join = OtlpJoin({"otlp_spans": OtlpProcessor("otlp_spans", redactor)}, "otlp_logs", wait_s=2.0)
        spans = 0
        for s in range(0, len(pairs), per_batch):
            chunk = pairs[s:s + per_batch]
            join.add(s, "otlp_spans", [RawMessage(None, sp, 0, s + i) for i, (sp, _) in enumerate(chunk)], now=0.0)
            join.add(s, "otlp_logs", [RawMessage(None, lg, 0, s + i) for i, (_, lg) in enumerate(chunk)], now=0.0)
            spans += join.release(now=0.0).joined
        return spans

    runs: dict[str, list[float]] = {"content on the spans": [], "content in log records, joined": []}
    for _ in range(repeats):
        for name, path in zip(runs, (attributes, joined)):
            t0 = time.perf_counter()
            spans = path()
            runs[name].append(spans / (time.perf_counter() - t0))
            assert spans == len(records), (name, spans)
    return {name: statistics.median(rates) for name, rates in runs.items()}


def otlp_json(message: bytes) -> bytes:
    """An otlp_proto message as otlp_json (hex ids, as the kafkaexporter writes them)."""
    req = ExportTraceServiceRequest.FromString(message)
    doc = json_format.MessageToDict(req)
    for rs, prs in zip(doc["resourceSpans"], req.resource_spans):
        for ss, pss in zip(rs["scopeSpans"], prs.scope_spans):
            for span, pspan in zip(ss["spans"], pss.spans):
                span["traceId"], span["spanId"] = pspan.trace_id.hex(), pspan.span_id.hex()
    return json.dumps(doc).encode()


def run_path(process: Callable[[list[RawMessage]], Any], raws: list[bytes], sink: ClickHouseSink, per_batch: int) -> dict[str, float]:
    """Decode ``raws`` in worker-sized batches, insert the rows; seconds spent in each stage."""
    decode_s = store_s = 0.0
    rows = 0
    for start in range(0, len(raws), per_batch):
        messages = [RawMessage(None, raw, 0, start + i) for i, raw in enumerate(raws[start:start + per_batch])]
        t0 = time.perf_counter()
        batch = process(messages)
        t1 = time.perf_counter()
        for row in batch.rows:
            sink.add(row)
        sink.flush()
        store_s += time.perf_counter() - t1
        decode_s += t1 - t0
        rows += len(batch.rows)
    return {"rows": rows, "decode_s": decode_s, "store_s": store_s}


def measure(n: int, per_message: int, repeats: int, home: Path) -> dict[str, list[dict[str, float]]]:
    """Each path ``repeats`` times, alternated, into one embedded ClickHouse under ``home``."""
    raws, records = native_records(n)
    proto = otlp_messages(records, per_message)
    paths = {
        "native Avro": (IngestProcessor(EventCodec(), "llm.calls", Redactor.from_names(REDACT)).process, raws, BATCH),
        "OTLP otlp_proto": (OtlpProcessor("otlp_spans", Redactor.from_names(REDACT)).process, proto, max(1, BATCH // per_message)),
        "OTLP otlp_json": (OtlpProcessor("otlp_spans", Redactor.from_names(REDACT)).process, [otlp_json(m) for m in proto],
                           max(1, BATCH // per_message)),
    }
    client = connect(f"chdb://{home / 'clickhouse'}")
    migrate(client)
    sink = ClickHouseSink(client, "llm_calls", LLM_CALL_COLUMNS)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, (process, messages, per_batch) in paths.items():
            results[name].append(run_path(process, messages, sink, per_batch))
    client.close()
    return results


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> str:
    """The results as the markdown of ``bench/results/otlp.md``."""
    lines = [
        "# OTLP ingest: GenAI spans/s decoded and stored, beside native Avro",
        "",
        f"`.venv/bin/python bench/bench_otlp.py --events {args.events} --spans-per-message {args.spans_per_message} "
        f"--repeats {args.repeats}`, {machine()}.",
        "",
        "One call = one native Avro message or one GenAI span; OTLP messages hold "
        f"{args.spans_per_message} spans each. Decode = what the agent runs on its decode thread (parse, map, "
        "validate, redact, build rows); store = inserts of 2,000 rows into `llm_calls` in the embedded engine. "
        f"Medians of {args.repeats} alternated repeats; Kafka left out.",
        "",
        "| path | calls | decode calls/s | decode + store calls/s | vs native (decode + store) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    native = None
    for name, runs in results.items():
        rows = runs[0]["rows"]
        decode = statistics.median(rows / r["decode_s"] for r in runs)
        total = statistics.median(rows / (r["decode_s"] + r["store_s"]) for r in runs)
        native = native or total
        lines.append(f"| {name} | {rows:,} | {decode:,.0f} | {total:,.0f} | {total / native:.2f}x |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- through Kafka and the worker

async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, max_request_size=8 << 20)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value)
        await producer.flush()
    finally:
        await producer.stop()


async def _commit_rate(settings: Settings, group: str, topic: str, n: int, per_message: int, worker: WorkerProcess) -> float:
    """Calls/s from the group's first commit on ``topic`` to its last (``n`` messages)."""
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + 600
    async with LagReader(settings.kafka_bootstrap) as reader:
        while time.monotonic() < deadline:
            worker.check_alive()
            lag = await reader.lag_if_ready(group, [topic])
            remaining = sum(lag.values()) if lag else n
            now = time.perf_counter()
            if first is None and remaining < n:
                first = (now, n - remaining)
            if remaining == 0 and first is not None and now > first[0]:
                return (n - first[1]) * per_message / (now - first[0])
            await asyncio.sleep(0.05)
    raise TimeoutError(worker.log_text()[-3000:])


def worker_rates(n: int, per_message: int, home: Path) -> dict[str, float]:
    """Calls/s stored by a real worker: native Avro on the calls topic, then OTLP proto spans."""
    raws, records = native_records(n)
    proto = otlp_messages(records, per_message)
    kafka = LocalKafka(home / "kafka", port=free_port(), jvm_opts=())
    kafka.start()
    rates = {}
    try:
        for name, values, per in (("native Avro", raws, 1), ("OTLP otlp_proto", proto, per_message)):
            tag = name.split()[-1]
            settings = Settings(home=str(home / tag), kafka_bootstrap=kafka.bootstrap, calls_topic=f"bench.calls.{tag}",
                                dead_letter_topic=f"bench.dlq.{tag}", consumer_group=f"bench-{tag}", detectors="",
                                results_topic="", otlp_topics="bench.otlp" if per > 1 else "")
            create_topics(kafka.bootstrap, {settings.calls_topic: 4, settings.dead_letter_topic: 1, "bench.otlp": 4})
            topic = "bench.otlp" if per > 1 else settings.calls_topic
            asyncio.run(_produce(kafka.bootstrap, topic, values))
            group = f"{settings.consumer_group}-otlp" if per > 1 else settings.ingest_group
            worker = WorkerProcess(settings).start()
            try:
                rates[name] = asyncio.run(_commit_rate(settings, group, topic, len(values), per, worker))
            finally:
                worker.stop()
    finally:
        kafka.stop()
    return rates


def main() -> None:
    """Parse the arguments, measure, write the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--spans-per-message", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker-events", type=int, default=20_000, help="calls per path through Kafka and a worker; 0 = skip")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "otlp.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmwatch-bench-otlp-") as tmp:
        results = measure(args.events, args.spans_per_message, args.repeats, Path(tmp))
        bridge = bridge_rates(native_records(args.events)[1], args.spans_per_message, args.repeats)
        rates = worker_rates(args.worker_events, args.spans_per_message, Path(tmp)) if args.worker_events else {}
    text = report(results, args)
    first = next(iter(bridge.values()))
    text += ("\nThe bridge's decode thread (spans -> native events for the calls topic), content on the spans vs "
             "content in `gen_ai.client.inference.operation.details` log records joined by trace and span id "
             f"(`OtlpJoin`), {args.events:,} spans, medians of {args.repeats} alternated repeats:\n\n"
             "| content | spans/s | vs on the spans |\n| --- | ---: | ---: |\n")
    text += "".join(f"| {name} | {rate:,.0f} | {rate / first:.2f}x |\n" for name, rate in bridge.items())
    if rates:
        native = rates["native Avro"]
        text += ("\nThrough Kafka and a real worker (`python -m streams worker`, detectors off, one run each, "
                 f"{args.worker_events:,} calls, from the first commit to the last):\n\n"
                 "| path | stored calls/s | vs native |\n| --- | ---: | ---: |\n")
        text += "".join(f"| {name} | {rate:,.0f} | {rate / native:.2f}x |\n" for name, rate in rates.items())
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
