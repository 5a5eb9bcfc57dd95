"""Decode and encode LLM-call events: Confluent wire-format Avro and JSON, on one topic.

Wire formats accepted on the ingest topic:

* Confluent: magic byte ``0``, 4-byte big-endian schema id, Avro binary body. The writer schema
  comes from a :class:`~streams.pipeline.registry.SchemaRegistry`; the record is resolved into the newest
  local schema, so every decoded event has the same shape.
* JSON: one object with the Avro field names (optional fields may be left out).

Anything else raises :class:`DecodeError`, whose ``reason`` is a short code that the dead-letter
path puts in a header. What storage cannot hold is settled here, one policy per class:

* a UTF-8 byte-order mark before JSON is ignored (RFC 8259 lets parsers do so);
* invalid Unicode: bytes that are not UTF-8 are dead-lettered (``invalid_utf8``); a JSON string
  holding a lone surrogate escape (``"\\ud800"``, valid JSON but not encodable) is repaired to
  U+FFFD and counted in :attr:`Decoded.repairs` (the call itself is worth keeping);
* ``NaN``, ``Infinity`` and numbers that overflow to infinity: ``non_finite_number``;
* numbers and timestamps outside what their columns hold: ``invalid_value``;
* JSON nested deeper than the parser's limit (about 1,000 levels): ``too_deep``;
* a key repeated in one JSON object (which value was meant?): ``duplicate_key``.

>>> codec = EventCodec()
>>> raw = codec.encode_json({"event_id": "e1", "timestamp_ms": 1700000000000,
...                          "service_name": "chat", "request_model": "gpt-4o"})
>>> codec.decode(raw).record["status"]
'ok'
>>> codec.decode(codec.encode_confluent(codec.decode(raw).record))[0]["event_id"]
'e1'
"""
from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import fastavro

from schemas import latest_schema, subject_ids
from streams.pipeline.registry import LocalSchemaRegistry, SchemaRegistry, UnknownSchemaError

MAGIC = 0
HEADER = struct.Struct(">bI")
DEFAULT_MAX_BYTES = 256 * 1024
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
UTF8_BOM = b"\xef\xbb\xbf"
#: ClickHouse DateTime64 holds 1900-01-01 .. 2299-12-31; an event's time must be after 1970.
MAX_TIMESTAMP_MS = int((dt.datetime(2300, 1, 1, tzinfo=dt.timezone.utc) - EPOCH).total_seconds() * 1000) - 1
FLOAT_FIELDS = ("latency_ms", "time_to_first_token_ms", "cost_usd")
_SURROGATE = re.compile("[\ud800-\udfff]")


class DecodeError(ValueError):
    """A message that cannot become a valid event. ``reason`` is a stable short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Decoded(NamedTuple):
    record: dict[str, Any]
    schema_id: int  # 0 for JSON
    repairs: int = 0  # strings whose lone surrogates were replaced by U+FFFD


@dataclass(frozen=True)
class Limits:
    """Bounds on what the worker accepts."""

    max_bytes: int = DEFAULT_MAX_BYTES


class EventCodec:
    """Turns raw ingest-topic bytes into validated event dicts, and events into bytes."""

    def __init__(self, registry: SchemaRegistry | None = None, limits: Limits = Limits()) -> None:
        self.registry = registry or LocalSchemaRegistry()
        self.limits = limits
        self._reader_json = reader = latest_schema("llm_call")
        # Timestamps are read as the epoch milliseconds the wire carries: fastavro's datetime
        # would only be turned back into milliseconds (and a value beyond datetime's range is an
        # out-of-range timestamp, for check_semantics to name, not a broken Avro body).
        self._reader = fastavro.parse_schema(without_timestamp_types(reader), _force=True)
        self._writers: dict[int, _WriterPlan] = {}
        ids = subject_ids()
        self.latest_id = max(ids)
        self._fields = self._reader["fields"]
        self._defaults = {
            f["name"]: f["default"] for f in self._fields if "default" in f
        }
        self._required = [f["name"] for f in self._fields if "default" not in f]
        self._field_names = frozenset(f["name"] for f in self._fields)
        self._checks = [(f["name"], type_check(f["type"])) for f in self._fields]
        self._type_names = {f["name"]: type_name(f["type"]) for f in self._fields}

    # -- decoding -------------------------------------------------------------------------
    def decode(self, raw: bytes | None) -> Decoded:
        """Decode and validate one message, or raise :class:`DecodeError`."""
        if not raw:
            raise DecodeError("empty", "message has no value")
        if len(raw) > self.limits.max_bytes:
            raise DecodeError(
                "too_large", f"{len(raw)} bytes exceeds the {self.limits.max_bytes}-byte limit"
            )
        if raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
        first = raw[0] if raw else 0x20
        if first == MAGIC:
            decoded = self._decode_confluent(raw)
        elif first in b"{ \t\r\n":
            record = self._decode_json(raw)
            # a lone surrogate can only come from a \u escape (UTF-8 cannot encode one)
            decoded = Decoded(record, 0, repair_surrogates(record) if b"\\u" in raw else 0)
        else:
            raise DecodeError("unknown_format", f"first byte 0x{first:02x} is neither Confluent magic 0x00 nor JSON '{{'")
        check_semantics(decoded.record)
        return decoded

    def _writer_plan(self, schema_id: int) -> "_WriterPlan":
        plan = self._writers.get(schema_id)
        if plan is None:
            try:
                schema = self.registry.get(schema_id)
            except UnknownSchemaError as exc:
                raise DecodeError("unknown_schema_id", str(exc)) from exc
            plan = _WriterPlan(
                fastavro.parse_schema(schema, _force=True),
                fastavro.parse_schema(without_timestamp_types(schema), _force=True),
                added_fields(schema, self._reader_json),
            )
            self._writers[schema_id] = plan
        return plan

    def _writer_schema(self, schema_id: int) -> Any:
        return self._writer_plan(schema_id).encoder

    def _decode_confluent(self, raw: bytes) -> Decoded:
        if len(raw) < HEADER.size:
            raise DecodeError("truncated", f"{len(raw)} bytes is shorter than the 5-byte Confluent header")
        _, schema_id = HEADER.unpack_from(raw)
        plan = self._writer_plan(schema_id)
        buf = io.BytesIO(raw)
        buf.seek(HEADER.size)
        try:
            if plan.added is None:  # the writer differs in more than added fields: resolve
                record = fastavro.schemaless_reader(buf, plan.decoder, self._reader)
            else:  # an older writer that only lacks fields with defaults: read, then add them
                record = fastavro.schemaless_reader(buf, plan.decoder, None)
                for name, default in plan.added:
                    record[name] = default.copy() if isinstance(default, (list, dict)) else default
        except UnicodeDecodeError as exc:
            raise DecodeError("invalid_utf8", f"a string field is not UTF-8: {exc}") from exc
        except (EOFError, StopIteration, IndexError, struct.error) as exc:
            raise DecodeError("truncated", f"Avro body ended early: {exc!r}") from exc
        except Exception as exc:  # fastavro raises assorted errors on garbage bodies
            raise DecodeError("bad_avro", f"Avro body does not match schema {schema_id}: {exc!r}") from exc
        if buf.tell() != len(raw):
            raise DecodeError("bad_avro", f"{len(raw) - buf.tell()} trailing bytes after the Avro record")
        return Decoded(record, schema_id)

    def _decode_json(self, raw: bytes) -> dict[str, Any]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("invalid_utf8", f"JSON message is not UTF-8: {exc}") from exc
        try:
            obj = json.loads(text, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise DecodeError("bad_json", f"not valid JSON: {exc}") from exc
        except RecursionError:
            raise DecodeError("too_deep", "JSON nested deeper than the parser allows (about 1,000 levels)") from None
        if not isinstance(obj, dict):
            raise DecodeError("bad_json", f"expected a JSON object, got {type(obj).__name__}")
        missing = [name for name in self._required if name not in obj]
        if missing:
            raise DecodeError("missing_field", f"required field(s) missing: {', '.join(missing)}")
        # Unknown fields are dropped, as Avro schema resolution drops a newer writer's fields.
        record = {**self._defaults, **{k: v for k, v in obj.items() if k in self._field_names}}
        for name, check in self._checks:
            if not check(record[name]):
                raise DecodeError(
                    "wrong_type", f"field {name!r} has a {type(record[name]).__name__}, not {self._type_names[name]}"
                )
        for name in ("latency_ms", "time_to_first_token_ms", "cost_usd"):
            if isinstance(record.get(name), int):
                record[name] = float(record[name])
        return record

    # -- encoding (producer side) -------------------------------------------------------------
    def encode_confluent(self, record: Mapping[str, Any], schema_id: int | None = None) -> bytes:
        """Confluent wire format with the given (default: newest) schema id."""
        schema_id = self.latest_id if schema_id is None else schema_id
        out = io.BytesIO()
        out.write(HEADER.pack(MAGIC, schema_id))
        fastavro.schemaless_writer(out, self._writer_schema(schema_id), dict(record))
        return out.getvalue()

    @staticmethod
    def encode_json(record: Mapping[str, Any]) -> bytes:
        """JSON with the Avro field names."""
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _WriterPlan(NamedTuple):
    """How messages of one writer schema are read."""

    encoder: Any  # the schema as registered (the producer side writes with it)
    decoder: Any  # the same without timestamp logical types
    added: tuple[tuple[str, Any], ...] | None  # see added_fields


def without_timestamp_types(schema: Any) -> Any:
    """``schema`` with the ``timestamp-*`` logical types removed (the longs are read as they are).

    >>> without_timestamp_types({"type": "long", "logicalType": "timestamp-millis"})
    {'type': 'long'}
    """
    if isinstance(schema, list):
        return [without_timestamp_types(s) for s in schema]
    if isinstance(schema, dict):
        return {
            k: without_timestamp_types(v) for k, v in schema.items()
            if not (k == "logicalType" and str(v).startswith("timestamp-"))
        }
    return schema


def added_fields(writer: Mapping[str, Any], reader: Mapping[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """The reader's fields a writer lacks, with their defaults, when that is the writer's only
    difference: every writer field is in the reader with the same type, every named type the
    writer defines is defined alike by the reader, and nothing is renamed (no aliases). Reading
    with the writer alone and adding these defaults then gives what Avro schema resolution gives,
    at two thirds of the cost. None when resolution is needed.

    >>> w = {"type": "record", "name": "E", "fields": [{"name": "a", "type": "string"}]}
    >>> r = {"type": "record", "name": "E", "fields": [{"name": "a", "type": "string"},
    ...                                             {"name": "b", "type": "int", "default": 1}]}
    >>> added_fields(w, r), added_fields(r, w)
    ((('b', 1),), None)
    """
    if writer.get("type") != "record" or reader.get("type") != "record" or writer.get("name") != reader.get("name"):
        return None
    if any("aliases" in node for node in _nodes(reader)):
        return None
    if not _named_types(writer["fields"]).items() <= _named_types(reader["fields"]).items():
        return None
    theirs = {f["name"]: f["type"] for f in reader["fields"]}
    ours = {f["name"] for f in writer["fields"]}
    if any(f["name"] not in theirs or theirs[f["name"]] != f["type"] for f in writer["fields"]):
        return None
    missing = [f for f in reader["fields"] if f["name"] not in ours]
    if any("default" not in f for f in missing):
        return None
    return tuple((f["name"], f["default"]) for f in missing)


def _nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a schema (fields, types, records), depth first."""
    if isinstance(schema, list):
        for item in schema:
            yield from _nodes(item)
    elif isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _nodes(value)


def _named_types(schema: Any) -> dict[str, str]:
    """Every named type (record, enum, fixed) defined in ``schema``: name -> its JSON."""
    return {
        node["name"]: json.dumps(node, sort_keys=True)
        for node in _nodes(schema) if node.get("type") in ("record", "enum", "fixed") and "name" in node
    }


def type_check(avro_type: Any) -> Callable[[Any], bool]:
    """A predicate telling whether a JSON value fits an Avro type (``bool`` is not a number).

    Compiled once per schema: checking a decoded JSON object is then a few ``type()`` calls per
    field, an order of magnitude cheaper than a generic validator.
    """
    if isinstance(avro_type, list):
        branches = [type_check(t) for t in avro_type]
        return lambda v: any(b(v) for b in branches)
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "array":
            item = type_check(avro_type["items"])
            return lambda v: type(v) is list and all(item(x) for x in v)
        if kind == "map":
            value = type_check(avro_type["values"])
            return lambda v: type(v) is dict and all(type(k) is str and value(x) for k, x in v.items())
        if kind == "record":
            fields = [(f["name"], type_check(f["type"]), "default" in f) for f in avro_type["fields"]]
            return lambda v: type(v) is dict and all(
                (name in v and check(v[name])) or (name not in v and has_default) for name, check, has_default in fields
            )
        return type_check(kind)  # a primitive with a logical type
    return _PRIMITIVE_CHECKS[avro_type]


_PRIMITIVE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: type(v) is bool,
    "int": lambda v: type(v) is int and -(2**31) <= v < 2**31,
    "long": lambda v: type(v) is int and -(2**63) <= v < 2**63,
    "float": lambda v: type(v) in (int, float),
    "double": lambda v: type(v) in (int, float),
    "string": lambda v: type(v) is str,
    "bytes": lambda v: type(v) is bytes,
}


def type_name(avro_type: Any) -> str:
    """A short human name of an Avro type for error messages."""
    if isinstance(avro_type, list):
        return " or ".join(type_name(t) for t in avro_type)
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "array":
            return f"array of {type_name(avro_type['items'])}"
        if kind == "map":
            return f"map of {type_name(avro_type['values'])}"
        return avro_type.get("name", kind) if kind == "record" else kind
    return avro_type


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise DecodeError("duplicate_key", f"key {duplicate!r} appears more than once in one JSON object")
    return obj


def _reject_constant(name: str) -> float:
    raise DecodeError("non_finite_number", f"{name} is not a number ClickHouse columns or rollups can hold")


def repair_surrogates(value: Any) -> int:
    r"""Replace lone surrogates (which no UTF-8 encoder accepts) in every string of a decoded
    JSON value, keys included, in place; returns how many strings were repaired.

    >>> record = {"a": "ok", "b": ["x\ud800y"], "c": {"k\udfff": "v"}}
    >>> repair_surrogates(record), record["b"] == ["x\ufffdy"], record["c"] == {"k\ufffd": "v"}
    (2, True, True)
    """
    repaired = 0
    if isinstance(value, dict):
        for key in list(value):
            repaired += repair_surrogates(value[key]) if isinstance(value[key], (dict, list)) else 0
            item = value[key]
            if isinstance(item, str) and not item.isascii() and _SURROGATE.search(item):
                value[key] = _SURROGATE.sub("\ufffd", item)
                repaired += 1
            if not key.isascii() and _SURROGATE.search(key):
                value[_SURROGATE.sub("\ufffd", key)] = value.pop(key)
                repaired += 1
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)):
                repaired += repair_surrogates(item)
            elif isinstance(item, str) and not item.isascii() and _SURROGATE.search(item):
                value[i] = _SURROGATE.sub("\ufffd", item)
                repaired += 1
    return repaired


def check_semantics(record: Mapping[str, Any]) -> None:
    """Rules the schema cannot express; raise :class:`DecodeError` on a violation."""
    for name in ("event_id", "service_name", "request_model"):
        if not record[name].strip():
            raise DecodeError("invalid_value", f"{name} must not be empty")
    if not 0 < record["timestamp_ms"] <= MAX_TIMESTAMP_MS:
        raise DecodeError(
            "invalid_value", f"timestamp_ms must be in (0, {MAX_TIMESTAMP_MS}] (1970 to 2299), got {record['timestamp_ms']}"
        )
    for name in FLOAT_FIELDS:
        value = record.get(name)
        if value is not None and not math.isfinite(value):
            raise DecodeError("non_finite_number", f"{name} is {value}, not a finite number")
    for name in ("input_tokens", "output_tokens", "cached_input_tokens"):
        if not 0 <= record[name] < 2**32:
            raise DecodeError("invalid_value", f"{name} must be in [0, 2^32), got {record[name]}")
    if record["latency_ms"] < 0:
        raise DecodeError("invalid_value", f"latency_ms must be >= 0, got {record['latency_ms']}")
    for name in ("time_to_first_token_ms", "cost_usd"):
        if record.get(name) is not None and record[name] < 0:
            raise DecodeError("invalid_value", f"{name} must be >= 0, got {record[name]}")
    if record["status"] not in ("ok", "error"):
        raise DecodeError("invalid_value", f"status must be 'ok' or 'error', got {record['status']!r}")
