"""What the store role reads back from Kafka: detector verdicts and drift reports, as rows.

Detect workers publish each verdict (Confluent-framed Avro, ``detection.v2.avsc``) with the
position of the call it judges, and each drift report as one JSON object. Here they become
``detections`` and ``drift_reports`` rows; a message that cannot becomes a dead letter with its
reason, never an exception.

A verdict's row keeps the *call's* position, so the replay guard keys it exactly as the ``all``
role does: a detect worker that replays a batch after a crash republishes verdicts the store
then drops. (v1 verdicts carry no position; their own place in the results topic stands in.)

>>> from streams.pipeline.detection import DETECTION_COLUMNS
>>> decoder = VerdictDecoder()
>>> decoder.rows([]).rows
[]
"""
from __future__ import annotations

import datetime as dt
import io
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

import fastavro

from schemas import load_schema
from streams.pipeline.dead_letter import DeadLetter
from streams.pipeline.drift_reports import DRIFT_REPORT_COLUMNS
from streams.pipeline.ingest import RawMessage
from streams.pipeline.registry import LocalSchemaRegistry, SchemaRegistry, UnknownSchemaError
from streams.storage.rows import to_datetime

_READER = fastavro.parse_schema(load_schema("detection.v2.avsc"))
_DRIFT_NAMES = [name for name, _ in DRIFT_REPORT_COLUMNS]


@dataclass
class StoredBatch:
    rows: list[list[Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class VerdictDecoder:
    """Results-topic messages -> ``detections`` rows (``DETECTION_COLUMNS`` order)."""

    def __init__(self, registry: SchemaRegistry | None = None, topic: str = "llm.detections") -> None:
        self.registry = registry or LocalSchemaRegistry()
        self.topic = topic
        self._writers: dict[int, Any] = {}

    def rows(self, messages: Sequence[RawMessage]) -> StoredBatch:
        out = StoredBatch()
        for msg in messages:
            try:
                out.rows.append(self._row(self._decode(msg.value), msg))
            except (ValueError, KeyError, EOFError, TypeError, UnknownSchemaError, struct.error) as exc:
                out.dead_letters.append(DeadLetter(msg.value, msg.key, "bad_verdict", repr(exc), self.topic, msg.partition, msg.offset))
        return out

    def _decode(self, raw: bytes | None) -> dict[str, Any]:
        if not raw or len(raw) < 5 or raw[0] != 0:
            raise ValueError("not a Confluent-framed Avro verdict")
        (schema_id,) = struct.unpack_from(">I", raw, 1)
        if schema_id not in self._writers:
            self._writers[schema_id] = fastavro.parse_schema(self.registry.get(schema_id))
        buf = io.BytesIO(raw)
        buf.seek(5)
        return fastavro.schemaless_reader(buf, self._writers[schema_id], _READER)

    def _row(self, v: dict[str, Any], msg: RawMessage) -> list[Any]:
        positioned = v["kafka_partition"] >= 0 and v["kafka_offset"] >= 0
        ts = v["timestamp_ms"]
        return [
            v["event_id"], v["detector"], v["detector_version"], float(v["score"]), int(v["flagged"]),
            float(v["threshold"]), v["label"], v["evidence_json"],
            ts if isinstance(ts, dt.datetime) else to_datetime(ts),
            v["service_name"], v["deployment_environment"], v["request_model"], v["prompt_version"],
            v["kafka_topic"] if positioned else self.topic,
            v["kafka_partition"] if positioned else msg.partition,
            v["kafka_offset"] if positioned else msg.offset,
        ]


def drift_report_message(row: Sequence[Any]) -> bytes:
    """A ``drift_reports`` row as the JSON a detect worker publishes.

    >>> row = ["id", "app", "m", "v1", "prompt_embedding", 1, 0.001, 0.3, 300, 100, "{}",
    ...        dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)]
    >>> drift_report_row(drift_report_message(row)) == row
    True
    """
    body = dict(zip(_DRIFT_NAMES, row))
    body["window_end"] = body["window_end"].isoformat()
    return json.dumps(body, separators=(",", ":")).encode()


def drift_report_row(raw: bytes) -> list[Any]:
    """The row a :func:`drift_report_message` carries; raises ValueError/KeyError if it is not one."""
    body = json.loads(raw)
    body["window_end"] = dt.datetime.fromisoformat(body["window_end"])
    return [body[name] for name in _DRIFT_NAMES]


def drift_report_rows(messages: Sequence[RawMessage], topic: str) -> StoredBatch:
    out = StoredBatch()
    for msg in messages:
        try:
            out.rows.append(drift_report_row(msg.value or b""))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            out.dead_letters.append(DeadLetter(msg.value, msg.key, "bad_drift_report", repr(exc), topic, msg.partition, msg.offset))
    return out
