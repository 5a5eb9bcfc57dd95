"""Detector verdicts as OpenTelemetry ``gen_ai.evaluation.result`` log records, free of Faust.

With ``LLMWATCH_EVALUATIONS_TOPIC`` set, every batch of verdicts is also published as one OTLP
``ExportLogsServiceRequest`` (``otlp_proto``, what the Collector's ``kafkareceiver`` reads), so an
OTel-native backend behind a Collector shows llmwatch's results beside the calls they judge:

* one log record per verdict, ``event_name`` ``gen_ai.evaluation.result``, parented to the call's
  span (its trace and span id) when the call came with them, and carrying ``gen_ai.response.id``
  when the call had one, as the GenAI semantic conventions ask;
* ``gen_ai.evaluation.name`` ``llmwatch.<detector>``, ``gen_ai.evaluation.score.value`` (0 to 1,
  higher is worse), ``gen_ai.evaluation.score.label`` (``flagged`` or ``pass``) and
  ``gen_ai.evaluation.explanation`` (the detector's label and its redacted evidence);
* ``llmwatch.event_id``, ``llmwatch.detector.version`` and ``llmwatch.threshold`` for joins back to
  llmwatch's own tables;
* a resource per app (``service.name``, ``deployment.environment.name``).

Delivery is at least once: a detect batch replayed after a crash publishes its records again
(same ``llmwatch.event_id`` and evaluation name).

>>> from detectors.base import Verdict
>>> call = {"event_id": "e1", "service_name": "shop", "deployment_environment": "prod",
...         "trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331", "response_id": None}
>>> request = evaluation_request([(call, Verdict("injection", "3", 0.91, True, 0.5, {"rule": "ignore"}, "heuristic"))])
>>> rec = request.resource_logs[0].scope_logs[0].log_records[0]
>>> rec.event_name, rec.span_id.hex(), {kv.key: kv.value.string_value for kv in rec.attributes}["gen_ai.evaluation.score.label"]
('gen_ai.evaluation.result', 'b7ad6b7169203331', 'flagged')
"""
from __future__ import annotations

import json
import time
from typing import Any, Mapping, Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ScopeLogs, SeverityNumber

from detectors.base import Verdict
from streams.pipeline.redaction import Redactor
from streams.storage.rows import NO_REDACTION

EVENT_NAME = "gen_ai.evaluation.result"
SCOPE = "llmwatch"
#: Backends truncate long attributes anyway; evidence beyond this says nothing more to a reader.
MAX_EXPLANATION = 1000


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _id(hex_id: Any, size: int) -> bytes:
    """A hex trace or span id as bytes; b"" when absent or malformed (the record is then unparented)."""
    try:
        raw = bytes.fromhex(hex_id or "")
    except ValueError:
        return b""
    return raw if len(raw) == size else b""


def explanation(verdict: Verdict, redactor: Redactor = NO_REDACTION) -> str:
    """The detector's label and its evidence (redacted like the stored evidence), shortened.

    >>> explanation(Verdict("grounding", "2", 0.2, False, 0.5, {"support": 0.8}, "supported"))
    'supported: {"support": 0.8}'
    """
    evidence = json.dumps(redactor.redact_value(dict(verdict.evidence)), default=str, ensure_ascii=False)
    text = f"{verdict.label}: {evidence}" if verdict.label else evidence
    return text if len(text) <= MAX_EXPLANATION else text[: MAX_EXPLANATION - 1] + "…"


def evaluation_request(judged: Sequence[tuple[Mapping[str, Any], Verdict]], redactor: Redactor = NO_REDACTION,
                       now_ns: int | None = None) -> ExportLogsServiceRequest:
    """One ``ExportLogsServiceRequest`` for ``judged`` (call record, verdict) pairs, a resource per app."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    request = ExportLogsServiceRequest()
    scopes: dict[tuple[str, str], ScopeLogs] = {}
    for call, verdict in judged:
        resource_key = (call["service_name"], call.get("deployment_environment") or "")
        if resource_key not in scopes:
            resource_logs = request.resource_logs.add()
            resource_logs.resource.attributes.extend(
                [_kv("service.name", resource_key[0])] + ([_kv("deployment.environment.name", resource_key[1])] if resource_key[1] else []))
            scopes[resource_key] = resource_logs.scope_logs.add()
            scopes[resource_key].scope.name = SCOPE
        scopes[resource_key].log_records.append(_record(call, verdict, redactor, now_ns))
    return request


def _record(call: Mapping[str, Any], verdict: Verdict, redactor: Redactor, now_ns: int) -> LogRecord:
    attributes = [
        _kv("gen_ai.evaluation.name", f"llmwatch.{verdict.detector}"),
        _kv("gen_ai.evaluation.score.value", float(verdict.score)),
        _kv("gen_ai.evaluation.score.label", "flagged" if verdict.flagged else "pass"),
        _kv("gen_ai.evaluation.explanation", explanation(verdict, redactor)),
        _kv("llmwatch.event_id", call["event_id"]),
        _kv("llmwatch.detector.version", verdict.version),
        _kv("llmwatch.threshold", float(verdict.threshold)),
    ]
    if call.get("response_id"):
        attributes.append(_kv("gen_ai.response.id", call["response_id"]))
    return LogRecord(
        time_unix_nano=now_ns, observed_time_unix_nano=now_ns, event_name=EVENT_NAME,
        severity_number=SeverityNumber.SEVERITY_NUMBER_WARN if verdict.flagged else SeverityNumber.SEVERITY_NUMBER_INFO,
        trace_id=_id(call.get("trace_id"), 16), span_id=_id(call.get("span_id"), 8), attributes=attributes,
    )


def encode_evaluations(judged: Sequence[tuple[Mapping[str, Any], Verdict]], redactor: Redactor = NO_REDACTION) -> bytes:
    """:func:`evaluation_request` as ``otlp_proto`` bytes (one Kafka message)."""
    return evaluation_request(judged, redactor).SerializeToString()
