"""Run pure detectors over decoded calls and turn verdicts into rows and result messages.

Free of Faust, so the stream agents, the tests and the benchmark share it: an agent decodes a
batch, hands it to :class:`DetectionRunner`, and writes what comes back.

>>> rec = {"event_id": "e1", "input_messages": [{"role": "system", "content": "be nice"},
...        {"role": "user", "content": "hi"}], "output_text": "hello", "retrieved_context": [],
...        "service_name": "a", "request_model": "m", "prompt_version": "v1", "timestamp_ms": 5,
...        "system_instructions": None, "latency_ms": 1.0, "input_tokens": 1, "output_tokens": 1,
...        "cost_usd": None, "status": "ok", "attributes": {}}
>>> ev = record_to_event(rec)
>>> (ev.prompt, ev.system, ev.context)
('hi', 'be nice', None)
>>> sampled("e1", "grounding", 1.0), sampled("e1", "grounding", 0.0)
(True, False)
"""
from __future__ import annotations

import hashlib
import io
import json
import struct
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Sequence

import fastavro

from detectors.base import Detector, Event, Verdict
from schemas import load_schema
from streams.pipeline.redaction import Redactor
from streams.storage.rows import to_datetime

DETECTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "String"),
    ("detector", "LowCardinality(String)"),
    ("detector_version", "LowCardinality(String)"),
    ("score", "Float32"),
    ("flagged", "UInt8"),
    ("threshold", "Float32"),
    ("label", "LowCardinality(String)"),
    ("evidence", "String"),
    ("timestamp", "DateTime64(3, 'UTC')"),
    ("service_name", "LowCardinality(String)"),
    ("deployment_environment", "LowCardinality(String)"),
    ("request_model", "LowCardinality(String)"),
    ("prompt_version", "LowCardinality(String)"),
    ("kafka_topic", "LowCardinality(String)"),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)
RESULTS_SCHEMA_ID = 102  # detection.v2.avsc: v1 plus where the call was read
log = logging.getLogger(__name__)


class Positioned(NamedTuple):
    """A decoded call and where it came from."""

    record: dict[str, Any]
    partition: int
    offset: int


def record_to_event(record: Mapping[str, Any]) -> Event:
    """What detectors see of a decoded call: last user message, system text, answer, passages."""
    messages = record["input_messages"]
    prompt = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    system = record.get("system_instructions") or "\n".join(m["content"] for m in messages if m["role"] == "system")
    context = tuple(record["retrieved_context"]) or None
    return Event(
        prompt=prompt,
        response=record.get("output_text"),
        context=context,
        system=system or None,
        event_id=record["event_id"],
        app=record["service_name"],
        model=record["request_model"],
        prompt_version=record["prompt_version"],
        timestamp_ms=record["timestamp_ms"],
        latency_ms=record.get("latency_ms"),
        input_tokens=record.get("input_tokens"),
        output_tokens=record.get("output_tokens"),
        cost_usd=record.get("cost_usd"),
        status=record.get("status", "ok"),
        attributes=dict(record.get("attributes") or {}),
    )


def sampled(event_id: str, detector: str, rate: float) -> bool:
    """Deterministic sampling: the same event gets the same answer on every replay."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(f"{detector}\x00{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


@dataclass
class DetectionOutput:
    rows: list[list[Any]]
    results: list[tuple[bytes, bytes]]  # (key, Confluent-Avro value) for the results topic
    verdicts: list[tuple[str, Verdict]]  # (event_id, verdict), for tests and metrics
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (event_id, detector, error)
    judged: list[tuple[dict[str, Any], Verdict]] = field(default_factory=list)  # (call record, verdict), for OTel evaluations


class DetectionRunner:
    """Runs a group of detectors over a batch of calls (each detector batches its own embeddings).

    ``keep`` decides which verdicts are stored: all (default) or only flagged ones (drift, whose
    per-event verdicts matter only when an alarm is raised; its reports go elsewhere).
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        topic: str,
        redactor: Redactor,
        sample_rates: Mapping[str, float] | None = None,
        flagged_only: Sequence[str] = (),
        applies: Mapping[str, Any] | None = None,
    ) -> None:
        self.detectors = list(detectors)
        self.topic = topic
        self.redactor = redactor
        self.sample_rates = dict(sample_rates or {})
        self.flagged_only = set(flagged_only)
        self.applies = dict(applies or {})  # detector name -> predicate(Event) -> bool
        self._results_schema = fastavro.parse_schema(load_schema("detection.v2.avsc"))

    def run(self, batch: Sequence[Positioned]) -> DetectionOutput:
        events = [record_to_event(p.record) for p in batch]
        out = DetectionOutput([], [], [])
        for detector in self.detectors:
            rate = self.sample_rates.get(detector.name, 1.0)
            applies = self.applies.get(detector.name)
            chosen = [
                i for i, e in enumerate(events) if sampled(e.event_id, detector.name, rate) and (applies is None or applies(e))
            ]
            if not chosen:
                continue
            chosen, verdicts = self._detect(detector, events, chosen, out)
            for i, verdict in zip(chosen, verdicts):
                if verdict.detector in self.flagged_only and not verdict.flagged:
                    continue
                pos = batch[i]
                out.rows.append(self._row(pos, verdict))
                out.results.append(self._result(pos, verdict))
                out.verdicts.append((pos.record["event_id"], verdict))
                out.judged.append((pos.record, verdict))
        return out

    def _detect(
        self, detector: Detector, events: list[Event], chosen: list[int], out: DetectionOutput
    ) -> tuple[list[int], list[Verdict]]:
        """The batch call; if it raises, one event at a time so one bad event costs only itself."""
        try:
            return chosen, detector.detect_batch([events[i] for i in chosen])
        except Exception:
            log.exception("%s failed on a batch of %d; retrying event by event", detector.name, len(chosen))
        kept, verdicts = [], []
        for i in chosen:
            try:
                verdicts.append(detector.detect(events[i]))
                kept.append(i)
            except Exception as exc:
                log.error("%s failed on event %s: %r", detector.name, events[i].event_id, exc)
                out.errors.append((events[i].event_id, detector.name, repr(exc)))
        return kept, verdicts

    def _evidence(self, verdict: Verdict) -> str:
        return json.dumps(self.redactor.redact_value(dict(verdict.evidence)), default=str, ensure_ascii=False)

    def _row(self, pos: Positioned, verdict: Verdict) -> list[Any]:
        r = pos.record
        return [
            r["event_id"],
            verdict.detector,
            verdict.version,
            float(verdict.score),
            int(verdict.flagged),
            float(verdict.threshold),
            verdict.label,
            self._evidence(verdict),
            to_datetime(r["timestamp_ms"]),
            r["service_name"],
            r["deployment_environment"],
            r["request_model"],
            r["prompt_version"],
            self.topic,
            pos.partition,
            pos.offset,
        ]

    def _result(self, pos: Positioned, verdict: Verdict) -> tuple[bytes, bytes]:
        r = pos.record
        body = {
            "event_id": r["event_id"],
            "detector": verdict.detector,
            "detector_version": verdict.version,
            "score": float(verdict.score),
            "flagged": bool(verdict.flagged),
            "threshold": float(verdict.threshold),
            "label": verdict.label,
            "evidence_json": self._evidence(verdict),
            "timestamp_ms": r["timestamp_ms"],
            "service_name": r["service_name"],
            "deployment_environment": r["deployment_environment"],
            "request_model": r["request_model"],
            "prompt_version": r["prompt_version"],
            "kafka_topic": self.topic,
            "kafka_partition": pos.partition,
            "kafka_offset": pos.offset,
        }
        buf = io.BytesIO()
        buf.write(struct.pack(">bI", 0, RESULTS_SCHEMA_ID))
        fastavro.schemaless_writer(buf, self._results_schema, body)
        return r["event_id"].encode(), buf.getvalue()
