"""OTLP traces from Kafka -> llm_calls records, free of Faust.

The OpenTelemetry Collector's ``kafkaexporter`` writes one ``ExportTraceServiceRequest`` per
message, as ``otlp_proto`` (the default) or ``otlp_json``. :func:`decode_traces` reads either
and maps every GenAI span onto the record dict the native codec produces
(:meth:`streams.pipeline.codec.EventCodec.decode`), so the rows, the redaction and the
dashboards are the same. Spans that are not GenAI spans (HTTP, DB, app spans) are skipped and
counted; a message that is not a trace request raises :class:`~streams.pipeline.codec.DecodeError`
with a reason for the dead-letter headers.

Conventions read (first match wins):

* current GenAI semconv: ``gen_ai.operation.name``, ``gen_ai.provider.name`` (or the older
  ``gen_ai.system``), ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.*``,
  ``gen_ai.response.finish_reasons``, ``gen_ai.prompt.name``, ``gen_ai.conversation.id``;
  message content in ``gen_ai.input.messages``, ``gen_ai.output.messages`` and
  ``gen_ai.system_instructions``, as span attributes or on a
  ``gen_ai.client.inference.operation.details`` span event;
* the older per-message events ``gen_ai.{system,user,assistant,tool}.message`` and
  ``gen_ai.choice``;
* the older flattened ``gen_ai.prompt.N.{role,content}`` and ``gen_ai.completion.N.*``,
  ``gen_ai.usage.prompt_tokens`` / ``completion_tokens``;
* OpenLLMetry's ``llm.vendor``, ``llm.request.type``, ``llm.request.model``,
  ``llm.response.model``, ``llm.usage.*``, ``llm.prompts.N.*`` and ``llm.completions.N.*``;
* OpenInference's (Phoenix) ``llm.model_name``, ``llm.provider`` / ``llm.system``,
  ``llm.token_count.*`` and ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.*``.

Log records carrying content (``gen_ai.*`` events exported as logs) are joined to their span by
trace and span id with :func:`log_content` and the ``logs`` argument of :func:`decode_traces`.

OTLP/JSON carries trace and span ids as hex (protobuf's own JSON mapping says base64) and
64-bit integers as strings; :func:`parse_request` converts the ids before ``json_format``.

>>> batch = decode_traces(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c",'
...     b' "spanId": "b7ad6b7169203331", "name": "chat gpt-4o", "startTimeUnixNano": "1764664000000000000",'
...     b' "endTimeUnixNano": "1764664000250000000", "attributes": [{"key": "gen_ai.request.model",'
...     b' "value": {"stringValue": "gpt-4o"}}]}]}]}]}')
>>> r = batch.records[0]
>>> r["request_model"], r["latency_ms"], r["span_id"], batch.skipped
('gpt-4o', 250.0, 'b7ad6b7169203331', 0)
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from schemas import latest_schema
from streams.pipeline.codec import DecodeError, EventCodec, check_semantics
from streams.pipeline.dead_letter import DeadLetter
from streams.pipeline.ingest import RawMessage, redact_bytes
from streams.pipeline.redaction import Redactor
from streams.storage.rows import LLM_CALL_COLUMNS, NO_REDACTION, llm_call_row

log = logging.getLogger(__name__)
_PARTITION = [name for name, _ in LLM_CALL_COLUMNS].index("kafka_partition")
_OFFSET = [name for name, _ in LLM_CALL_COLUMNS].index("kafka_offset")

#: Every field of the newest llm_call schema with its default: a span fills in what it has.
DEFAULTS: dict[str, Any] = {f["name"]: f["default"] for f in latest_schema("llm_call")["fields"] if "default" in f}
#: Prefixes that make a span a GenAI span.
GENAI_PREFIXES = ("gen_ai.", "llm.")
#: An OTLP message may hold thousands of spans: a larger limit than one native event's.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")
_ROLE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
_INDEXED = re.compile(
    r"^(gen_ai\.prompt|gen_ai\.completion|llm\.prompts|llm\.completions|llm\.input_messages|llm\.output_messages)"
    r"\.(\d+)\.(?:message\.)?(\w+)$"
)
_INPUTS = ("gen_ai.prompt", "llm.prompts", "llm.input_messages")
_OPERATIONS = {"completion": "text_completion", "embedding": "embeddings"}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


@dataclass
class OtlpBatch:
    """What one OTLP message became: records for ``llm_calls``, skipped spans, span-level rejects."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # spans that are not GenAI spans
    rejected: list[DecodeError] = field(default_factory=list)  # GenAI spans that fail validation


# --------------------------------------------------------------------------- parsing

def parse_request(raw: bytes | None, message: type = ExportTraceServiceRequest, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """``raw`` (otlp_proto or otlp_json, told apart by a leading ``{``) as an OTLP export request."""
    _check_size(raw, max_bytes)
    if raw.lstrip()[:1] == b"{":  # type: ignore[union-attr]
        return _parse_json(raw, message)
    request = message()
    try:
        request.ParseFromString(raw)
    except ProtoDecodeError as exc:
        raise DecodeError("bad_otlp_proto", f"not an OTLP {message.__name__} (otlp_proto): {exc}") from exc
    return request


def _check_size(raw: bytes | None, max_bytes: int) -> None:
    if not raw:
        raise DecodeError("empty", "message has no value")
    if len(raw) > max_bytes:
        raise DecodeError("too_large", f"{len(raw)} bytes exceeds the {max_bytes}-byte OTLP limit")


def _parse_json(raw: bytes, message: type) -> Any:
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError("bad_otlp_json", f"not valid JSON: {exc}") from exc
    except RecursionError:
        raise DecodeError("too_deep", "JSON nested deeper than the parser allows") from None
    if not isinstance(obj, dict):
        raise DecodeError("bad_otlp_json", f"expected a JSON object, got {type(obj).__name__}")
    _hex_ids_to_base64(obj)
    try:
        return json_format.ParseDict(obj, message(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError("bad_otlp_json", f"not an OTLP {message.__name__} (otlp_json): {exc}") from exc


def _hex_ids_to_base64(node: Any) -> None:
    """Rewrite OTLP/JSON's hex ``traceId``/``spanId``/``parentSpanId`` as protobuf-JSON base64, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = _hex_to_base64(key, value)
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def _hex_to_base64(key: str, value: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError:
        raise DecodeError("bad_otlp_id", f"{key} {value[:40]!r} is not hex (OTLP/JSON ids are hex)") from None


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as plain Python (lists, dicts, str, int, float, bool, bytes, None)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return None if kind is None else getattr(value, kind)


def attributes(items: Iterable[Any]) -> dict[str, Any]:
    """A repeated ``KeyValue`` as a dict."""
    return {kv.key: any_value(kv.value) for kv in items}


def hex_id(raw: bytes) -> str:
    """A trace or span id as lowercase hex ('' when unset)."""
    return binascii.hexlify(raw).decode("ascii") if raw else ""


# --------------------------------------------------------------------------- otlp_json, read directly

# protobuf's json_format.ParseDict is pure Python and took 60% of a JSON batch's decode time
# (cProfile, 1,000 spans): the JSON spans are read straight into :class:`SpanView` instead.

def _json_value(value: Mapping[str, Any]) -> Any:
    """An OTLP/JSON ``AnyValue`` (int64 as a string, bytes as base64) as plain Python."""
    for kind, item in value.items():
        if kind == "stringValue":
            return item
        if kind == "intValue":
            return int(item)
        if kind in ("doubleValue", "boolValue"):
            return float(item) if kind == "doubleValue" else bool(item)
        if kind == "arrayValue":
            return [_json_value(v) for v in item.get("values", ())]
        if kind == "kvlistValue":
            return _json_attributes(item.get("values", ()))
        if kind == "bytesValue":
            return base64.b64decode(item)
    return None


def _json_attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: _json_value(kv.get("value") or {}) for kv in items}


def _json_hex(span: Mapping[str, Any], key: str) -> str:
    value = span.get(key) or ""
    try:
        bytes.fromhex(value)
    except (ValueError, TypeError):
        raise DecodeError("bad_otlp_id", f"{key} {str(value)[:40]!r} is not hex (OTLP/JSON ids are hex)") from None
    return value.lower()


def _json_span(span: Mapping[str, Any]) -> SpanView:
    status = span.get("status") or {}
    code = status.get("code", 0)
    return SpanView(
        _json_attributes(span.get("attributes", ())),
        [(e.get("name", ""), _json_attributes(e.get("attributes", ()))) for e in span.get("events", ())],
        _json_hex(span, "traceId"), _json_hex(span, "spanId"),
        int(span.get("startTimeUnixNano", 0)), int(span.get("endTimeUnixNano", 0)),
        code in (2, "STATUS_CODE_ERROR"), str(status.get("message", "")))


def json_spans(raw: bytes) -> Iterator[tuple[dict[str, Any], SpanView]]:
    """(resource attributes, span) for every span of an otlp_json trace message."""
    try:
        doc = json.loads(raw)
        out = []
        for rs in doc["resourceSpans"] if isinstance(doc, dict) and "resourceSpans" in doc else _not_traces(doc):
            resource = _json_attributes((rs.get("resource") or {}).get("attributes", ()))
            for ss in rs.get("scopeSpans", ()):
                out.extend((resource, _json_span(span)) for span in ss.get("spans", ()))
    except DecodeError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError("bad_otlp_json", f"not valid JSON: {exc}") from exc
    except RecursionError:
        raise DecodeError("too_deep", "JSON nested deeper than the parser allows") from None
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise DecodeError("bad_otlp_json", f"not an OTLP ExportTraceServiceRequest (otlp_json): {exc!r}") from exc
    return iter(out)


def _not_traces(doc: Any) -> list[Any]:
    if isinstance(doc, dict) and not doc:
        return []  # an empty request is valid OTLP
    raise TypeError(f"expected an object with resourceSpans, got {type(doc).__name__}")


# --------------------------------------------------------------------------- message content

def _loads(value: Any) -> Any:
    """Content attributes are JSON strings in most SDKs and structured values in some."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _text(content: Any) -> str:
    """The text of a message's ``parts`` / ``content`` (text parts joined; other parts skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if "parts" in content:
            return _text(content["parts"])
        if content.get("type", "text") == "text":
            return _text(content.get("content", content.get("text")))
        return ""
    if isinstance(content, list):
        return "\n".join(t for t in (_text(part) for part in content) if t)
    return str(content)


def _messages(value: Any) -> list[dict[str, Any]]:
    value = _loads(value)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return [{"role": "user", "content": _text(value)}] if value else []
    return [m if isinstance(m, dict) else {"role": "user", "content": m} for m in value]


def _tool_calls(message: Mapping[str, Any]) -> int:
    parts = message.get("parts") or []
    listed = message.get("tool_calls") or []
    return sum(isinstance(p, dict) and p.get("type") == "tool_call" for p in parts) + len(listed)


def _apply_messages(out: dict[str, Any], attrs: Mapping[str, Any]) -> None:
    """``gen_ai.input.messages`` / ``output.messages`` / ``system_instructions`` (current semconv)."""
    if "gen_ai.input.messages" in attrs:
        messages = _messages(attrs["gen_ai.input.messages"])
        out["input_messages"] = [{"role": str(m.get("role", "user")), "content": _text(m)} for m in messages]
    if "gen_ai.system_instructions" in attrs:
        out["system_instructions"] = _text(_loads(attrs["gen_ai.system_instructions"]))
    if "gen_ai.output.messages" in attrs:
        outputs = _messages(attrs["gen_ai.output.messages"])
        out["output_text"] = "\n".join(t for t in (_text(m) for m in outputs) if t)
        reasons = [m["finish_reason"] for m in outputs if m.get("finish_reason")]
        if reasons:
            out["finish_reason"] = str(reasons[0])
        out["tool_calls"] = sum(_tool_calls(m) for m in outputs)


def _apply_indexed(out: dict[str, Any], attrs: Mapping[str, Any]) -> None:
    """The flattened ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` and ``llm.prompts.N.*``."""
    prompts: dict[int, dict[str, Any]] = {}
    completions: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        match = _INDEXED.match(key)
        if match:
            bucket = prompts if match.group(1) in _INPUTS else completions
            bucket.setdefault(int(match.group(2)), {})[match.group(3)] = value
    if prompts and "input_messages" not in out:
        ordered = [prompts[i] for i in sorted(prompts)]
        out["input_messages"] = [{"role": str(p.get("role", "user")), "content": _text(p.get("content"))} for p in ordered]
    if completions and "output_text" not in out:
        ordered = [completions[i] for i in sorted(completions)]
        out["output_text"] = "\n".join(t for t in (_text(c.get("content")) for c in ordered) if t)
        reasons = [c["finish_reason"] for c in ordered if c.get("finish_reason")]
        if reasons:
            out["finish_reason"] = str(reasons[0])
        out.setdefault("tool_calls", sum(1 for c in ordered for k in c if k == "tool_calls"))


def _apply_events(out: dict[str, Any], events: list[tuple[str, dict[str, Any]]]) -> None:
    """Per-message events (``gen_ai.user.message``, ``gen_ai.choice``; OpenLIT's ``gen_ai.content.*``)."""
    inputs, outputs, reasons = [], [], []
    for name, body in events:
        if name in _ROLE_EVENTS:
            inputs.append({"role": str(body.get("role", _ROLE_EVENTS[name])), "content": _text(body.get("content"))})
        elif name == "gen_ai.choice":
            message = body.get("message", body)
            outputs.append(_text(message.get("content") if isinstance(message, dict) else message))
            if body.get("finish_reason"):
                reasons.append(str(body["finish_reason"]))
        elif name == "gen_ai.content.prompt" and "gen_ai.prompt" in body:
            inputs.append({"role": "user", "content": _text(body["gen_ai.prompt"])})
        elif name == "gen_ai.content.completion" and "gen_ai.completion" in body:
            outputs.append(_text(body["gen_ai.completion"]))
    if inputs and "input_messages" not in out:
        out["input_messages"] = inputs
    if outputs and "output_text" not in out:
        out["output_text"] = "\n".join(t for t in outputs if t)
    if reasons and "finish_reason" not in out:
        out["finish_reason"] = reasons[0]


def content(attrs: Mapping[str, Any], events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The record's message fields from a span's attributes and its (span or log) events.

    >>> content({"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hi",
    ...          "gen_ai.completion.0.content": "hello", "gen_ai.completion.0.finish_reason": "stop"}, [])
    {'input_messages': [{'role': 'user', 'content': 'hi'}], 'output_text': 'hello', 'finish_reason': 'stop', 'tool_calls': 0}
    """
    merged = dict(attrs)
    for name, body in events:
        if name == DETAILS_EVENT:
            merged.update({k: v for k, v in body.items() if k in CONTENT_KEYS})
    out: dict[str, Any] = {}
    _apply_messages(out, merged)
    _apply_indexed(out, merged)
    _apply_events(out, events)
    return out


# --------------------------------------------------------------------------- span -> record

def _first(attrs: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value not in (None, "", []):
            return value
    return default


def _count(attrs: Mapping[str, Any], *keys: str) -> int:
    """A token count; JSON may carry it as a string, a bad one raises ``invalid_value``."""
    value = _first(attrs, *keys, default=0)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DecodeError("invalid_value", f"{keys[0]} must be an integer, got {value!r}") from None


def is_genai(attrs: Mapping[str, Any]) -> bool:
    """A GenAI span carries at least one ``gen_ai.*`` or OpenLLMetry ``llm.*`` attribute."""
    return any(key.startswith(GENAI_PREFIXES) for key in attrs)


def _identity(attrs: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    model = _first(attrs, "gen_ai.request.model", "llm.request.model", "llm.model_name", "gen_ai.response.model",
                   "llm.response.model")
    operation = str(_first(attrs, "gen_ai.operation.name", "llm.request.type", default="chat"))
    return {
        "service_name": str(_first(resource, "service.name", default="unknown_service")),
        "deployment_environment": str(_first(resource, "deployment.environment.name", "deployment.environment",
                                             default=DEFAULTS["deployment_environment"])),
        "provider_name": str(_first(attrs, "gen_ai.provider.name", "gen_ai.system", "llm.vendor", "llm.provider",
                                    "llm.system", default="")),
        "operation_name": _OPERATIONS.get(operation, operation),
        "request_model": str(model or "unknown"),
        "response_model": str(_first(attrs, "gen_ai.response.model", "llm.response.model", "llm.model_name", default="")),
        "response_id": str(_first(attrs, "gen_ai.response.id", default="")),
        "prompt_name": str(_first(attrs, "gen_ai.prompt.name", default="")),
        "prompt_version": str(_first(attrs, "gen_ai.prompt.version", default="")),
        "server_address": str(_first(attrs, "server.address", default="")),
        "user_id": _first(attrs, "user.id"),
        "conversation_id": _first(attrs, "gen_ai.conversation.id"),
    }


def _usage(attrs: Mapping[str, Any]) -> dict[str, Any]:
    ttft = _first(attrs, "gen_ai.server.time_to_first_token")
    reasons = _first(attrs, "gen_ai.response.finish_reasons")
    if isinstance(reasons, str):
        reasons = [reasons]
    return {
        "input_tokens": _count(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens",
                               "llm.token_count.prompt"),
        "output_tokens": _count(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                "llm.usage.completion_tokens", "llm.token_count.completion"),
        "cached_input_tokens": _count(attrs, "gen_ai.usage.cache_read.input_tokens"),
        "time_to_first_token_ms": None if ttft is None else float(ttft) * 1000.0,
        "finish_reason": str(reasons[0]) if reasons else None,
    }


def _status(span: SpanView, attrs: Mapping[str, Any]) -> dict[str, Any]:
    error_type = _first(attrs, "error.type")
    if error_type is None and not span.error:
        return {"status": "ok", "error_type": None}
    return {"status": "error", "error_type": str(error_type or span.status_message or "_OTHER")}


def _extra_attributes(attrs: Mapping[str, Any]) -> dict[str, str]:
    """Scalar span attributes not mapped to a column, as strings (the ``attributes`` map)."""
    return {
        key: str(value) for key, value in attrs.items()
        if isinstance(value, (str, int, float, bool)) and key not in CONTENT_KEYS and not _INDEXED.match(key)
        and not key.startswith(("gen_ai.prompt.", "gen_ai.completion."))
    }


class SpanView(NamedTuple):
    """What a span contributes to a record, read from otlp_proto or otlp_json alike."""

    attrs: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    trace_id: str  # hex
    span_id: str  # hex
    start_ns: int
    end_ns: int
    error: bool  # status code ERROR
    status_message: str


def proto_spans(request: ExportTraceServiceRequest) -> Iterator[tuple[dict[str, Any], SpanView]]:
    """(resource attributes, span) for every span of a parsed request."""
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield resource, SpanView(
                    attributes(span.attributes), [(e.name, attributes(e.attributes)) for e in span.events],
                    hex_id(span.trace_id), hex_id(span.span_id), span.start_time_unix_nano, span.end_time_unix_nano,
                    span.status.code == Status.STATUS_CODE_ERROR, span.status.message)


def span_record(span: SpanView, resource: Mapping[str, Any], events: Sequence[tuple[str, dict[str, Any]]] = ()) -> dict[str, Any]:
    """One GenAI span as an llm_call record (validated like a native event)."""
    attrs = span.attrs
    record = {**DEFAULTS, "event_id": f"otlp-{span.trace_id}-{span.span_id}", "timestamp_ms": span.start_ns // 1_000_000,
              "latency_ms": max(0, span.end_ns - span.start_ns) / 1e6,
              "trace_id": span.trace_id or None, "span_id": span.span_id or None}
    record.update(_identity(attrs, resource))
    usage = _usage(attrs)
    record.update({k: v for k, v in usage.items() if k != "finish_reason"})
    record.update(_status(span, attrs))
    found = content(attrs, [*span.events, *events])
    record.update(found)
    record["finish_reason"] = found.get("finish_reason") or usage["finish_reason"]
    record["attributes"] = _extra_attributes(attrs)
    record["input_messages"] = list(record["input_messages"])
    check_semantics(record)
    return record


def decode_traces(raw: bytes | None, logs: Mapping[tuple[str, str], list[tuple[str, dict[str, Any]]]] | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> OtlpBatch:
    """An OTLP trace message (otlp_proto or otlp_json) as llm_call records.

    ``logs`` maps (trace id, span id) in hex to log-record events (:func:`log_content`). A message
    that is not an ``ExportTraceServiceRequest`` raises :class:`DecodeError`; a GenAI span that
    fails validation lands in :attr:`OtlpBatch.rejected` while the others are kept.
    """
    spans, skipped = genai_spans(raw, max_bytes)
    batch = OtlpBatch(skipped=skipped)
    for resource, span in spans:
        try:
            batch.records.append(span_record(span, resource, (logs or {}).get((span.trace_id, span.span_id), [])))
        except DecodeError as exc:
            batch.rejected.append(rejected(span, exc))
    return batch


def genai_spans(raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[list[tuple[dict[str, Any], SpanView]], int]:
    """The GenAI spans of a trace message, with their resource attributes, and how many spans were not GenAI spans."""
    _check_size(raw, max_bytes)
    if raw.lstrip()[:1] == b"{":  # type: ignore[union-attr]
        spans = list(json_spans(raw))  # type: ignore[arg-type]
    else:
        spans = list(proto_spans(parse_request(raw, ExportTraceServiceRequest, max_bytes)))
    genai = [(resource, span) for resource, span in spans if is_genai(span.attrs)]
    return genai, len(spans) - len(genai)


def rejected(span: SpanView, exc: DecodeError) -> DecodeError:
    """``exc`` naming the span it rejects."""
    return DecodeError(exc.reason, f"span {span.span_id}: {exc.detail}")


def has_content(span: SpanView) -> bool:
    """Whether the span itself carries message content (else it may be in log records)."""
    found = content(span.attrs, span.events)
    return bool(found.get("input_messages") or found.get("output_text"))



def log_content(raw: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[tuple[str, str], list[tuple[str, dict[str, Any]]]]:
    """GenAI log records of an OTLP logs message, by (trace id, span id) in hex, for :func:`decode_traces`.

    A record's event name is its ``event_name`` or its ``event.name`` attribute; its fields are
    its attributes plus its body (a map, or ``{"content": body}``).
    """
    request = parse_request(raw, ExportLogsServiceRequest, max_bytes)
    out: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                attrs = attributes(log.attributes)
                name = getattr(log, "event_name", "") or str(attrs.get("event.name", ""))
                if not name.startswith("gen_ai.") or not log.span_id:
                    continue
                body = any_value(log.body)
                fields = {**attrs, **(body if isinstance(body, dict) else {"content": body})}
                out.setdefault((hex_id(log.trace_id), hex_id(log.span_id)), []).append((name, fields))
    return out


# --------------------------------------------------------------------------- batches of messages

@dataclass
class OtlpRows:
    """What a batch of OTLP messages became: ``llm_calls`` rows, dead letters, skipped spans."""

    rows: list[list[Any]] = field(default_factory=list)
    events: list[tuple[bytes, bytes]] = field(default_factory=list)  # (app, native JSON) when bridging
    dead_letters: list[DeadLetter] = field(default_factory=list)
    spans: int = 0  # GenAI spans stored
    skipped: int = 0  # spans that are not GenAI spans


class OtlpProcessor:
    """OTLP trace messages of one topic -> rows and dead letters; never raises for bad input.

    A message that is not a trace request is dead-lettered whole. A GenAI span that fails
    validation dead-letters its message (reason of the first such span) while the message's
    valid spans are stored: a replay of that dead letter is deduplicated by ``event_id``
    (``otlp-<trace id>-<span id>``).
    """

    def __init__(self, topic: str, redactor: Redactor = NO_REDACTION, dead_letter_payload: str = "redacted",
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.topic = topic
        self.redactor = redactor
        self.dead_letter_payload = dead_letter_payload
        self.max_bytes = max_bytes

    def process(self, messages: Sequence[RawMessage], bridge: bool = False) -> OtlpRows:
        """Rows for every GenAI span of ``messages`` (with ``bridge``: native JSON events keyed by
        app, for the calls topic, instead); dead letters for what cannot be read."""
        out = OtlpRows()
        for msg in messages:
            try:
                batch = decode_traces(msg.value, max_bytes=self.max_bytes)
                if bridge:
                    out.events += [(r["service_name"].encode(), EventCodec.encode_json(r)) for r in batch.records]
                    rows = batch.records
                else:
                    rows = [llm_call_row(r, 0, self.topic, msg.partition, msg.offset, self.redactor) for r in batch.records]
            except DecodeError as exc:
                out.dead_letters.append(self.dead(msg, exc.reason, exc.detail))
                continue
            except Exception as exc:  # a bug or an input we did not foresee: never lose the worker
                log.exception("unexpected error decoding %s[%d]@%d", self.topic, msg.partition, msg.offset)
                out.dead_letters.append(self.dead(msg, "internal_error", repr(exc)))
                continue
            if batch.rejected:
                first = batch.rejected[0]
                detail = f"{first.detail} ({len(batch.rejected)} of {len(batch.rejected) + len(rows)} GenAI spans rejected)"
                out.dead_letters.append(self.dead(msg, first.reason, detail))
            if not bridge:
                out.rows.extend(rows)
            out.spans += len(rows)
            out.skipped += batch.skipped
        return out

    def storage_rejected(self, messages: Sequence[RawMessage], refused: Sequence[tuple[list[Any], str]]) -> list[DeadLetter]:
        """One ``storage_rejected`` dead letter per message some of whose rows ClickHouse refused."""
        by_position = {(m.partition, m.offset): m for m in messages}
        first: dict[tuple[int, int], str] = {}
        for row, message in refused:
            first.setdefault((row[_PARTITION], row[_OFFSET]), message)
        return [self.dead(by_position[pos], "storage_rejected", message) for pos, message in first.items()]

    def dead(self, msg: RawMessage, reason: str, error: str) -> DeadLetter:
        """``msg`` as a dead letter (bytes redacted unless ``dead_letter_payload`` is "original")."""
        value, key = msg.value, msg.key
        if self.dead_letter_payload == "redacted":
            value, key = redact_bytes(self.redactor, value), redact_bytes(self.redactor, key)
        return DeadLetter(value, key, reason, error, self.topic, msg.partition, msg.offset)
