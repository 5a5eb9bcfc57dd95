"""GenAI spans joined with the log records that carry their content, free of Faust.

Under the newer GenAI conventions an instrumentation may send message content as log records
(``gen_ai.client.inference.operation.details``, ``gen_ai.user.message``, ``gen_ai.choice``...)
instead of span attributes. The Collector exports those to a logs topic (``otlp_logs``), apart
from the spans. :class:`OtlpJoin` pairs them by (trace id, span id):

* a GenAI span that carries its content is released at once (and one whose logs came first,
  with them);
* a span without content waits up to ``wait_s`` for its logs, then is released as it is
  (counted ``unjoined``): a call is never lost for want of its content;
* logs that come before their span wait up to ``wait_s`` for it, then are dropped (``orphan_logs``).

Both sides remember which batch they came from. A batch is *open* while any of its spans or logs
waits; the caller commits batches in the order it took them and only once they are closed, so a
crash re-reads whatever was waiting and republishes it under the same ``event_id``, which the
calls topic's consumers drop as duplicates.

>>> join = OtlpJoin({"otlp_spans": OtlpProcessor("otlp_spans")}, "otlp_logs", wait_s=2.0)
>>> join.add(1, "otlp_spans", [], now=0.0)
>>> released = join.release(now=0.0)
>>> (released.events, join.is_open(1), join.next_deadline())
([], False, None)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from streams.pipeline.codec import DecodeError, EventCodec
from streams.pipeline.dead_letter import DeadLetter
from streams.pipeline.ingest import RawMessage
from streams.pipeline.otlp import (
    OtlpProcessor, SpanView, genai_spans, has_content, log_content, rejected, span_record,
)

Key = tuple[str, str]  # (trace id, span id), hex
LogEvents = list[tuple[str, dict[str, Any]]]


@dataclass
class _Span:
    resource: dict[str, Any]
    span: SpanView
    message: RawMessage
    topic: str
    batch: int
    deadline: float


@dataclass
class _Logs:
    events: LogEvents
    batches: list[int]
    deadline: float


@dataclass
class Released:
    """What :meth:`OtlpJoin.release` hands out: native events for the calls topic, dead letters, counts."""

    events: list[tuple[bytes, bytes]] = field(default_factory=list)  # (app, native JSON)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    spans: int = 0  # GenAI spans released
    skipped: int = 0  # spans that are not GenAI spans
    joined: int = 0  # spans that took content from log records
    unjoined: int = 0  # spans without content released when their wait ended
    orphan_logs: int = 0  # log records whose span never came within the wait


class OtlpJoin:
    """Trace messages of ``processors``' topics joined with GenAI log records of ``logs_topic``.

    :meth:`add` and :meth:`release` are called from one thread (the decode thread); neither raises
    for bad input: unreadable messages and invalid spans become dead letters with their reasons.
    """

    def __init__(self, processors: dict[str, OtlpProcessor], logs_topic: str, wait_s: float) -> None:
        self.processors = processors
        self.logs_processor = OtlpProcessor(logs_topic, *_dead_letter_settings(processors))
        self.logs_topic = logs_topic
        self.wait_s = wait_s
        self._spans: dict[Key, _Span] = {}
        self._logs: dict[Key, _Logs] = {}
        self._open: Counter[int] = Counter()
        self._out = Released()

    # ------------------------------------------------------------------ in

    def add(self, batch: int, topic: str, messages: Sequence[RawMessage], now: float) -> None:
        """Read ``messages`` of ``topic`` (a traces topic or the logs topic), taken as ``batch``."""
        for msg in messages:
            if topic == self.logs_topic:
                self._add_logs(batch, msg, now)
            else:
                self._add_spans(batch, topic, msg, now)

    def _add_logs(self, batch: int, msg: RawMessage, now: float) -> None:
        try:
            found = log_content(msg.value, self.logs_processor.max_bytes)
        except DecodeError as exc:
            self._out.dead_letters.append(self.logs_processor.dead(msg, exc.reason, exc.detail))
            return
        for key, events in found.items():
            waiting = self._spans.pop(key, None)
            if waiting is not None:
                self._open[waiting.batch] -= 1
                self._emit(waiting, events)
                continue
            held = self._logs.get(key)
            if held is None:
                self._logs[key] = _Logs(list(events), [batch], now + self.wait_s)
            else:
                held.events.extend(events)
                held.batches.append(batch)
            self._open[batch] += 1

    def _add_spans(self, batch: int, topic: str, msg: RawMessage, now: float) -> None:
        processor = self.processors[topic]
        try:
            spans, skipped = genai_spans(msg.value, processor.max_bytes)
        except DecodeError as exc:
            self._out.dead_letters.append(processor.dead(msg, exc.reason, exc.detail))
            return
        self._out.skipped += skipped
        for resource, span in spans:
            key = (span.trace_id, span.span_id)
            held = _Span(resource, span, msg, topic, batch, now + self.wait_s)
            logs = self._logs.pop(key, None)
            if logs is not None:
                for b in logs.batches:
                    self._open[b] -= 1
                self._emit(held, logs.events)
                continue
            try:  # built once: kept when the span carries its own content
                record: dict[str, Any] | None = span_record(span, resource, [])
            except DecodeError:
                record = None
            if record is not None and (record.get("input_messages") or record.get("output_text")):
                self._publish(record, joined=False)
            elif record is None and has_content(span):
                self._emit(held, [])  # invalid on its own: rejected now, as it will be with logs
            else:
                self._spans[key] = held
                self._open[batch] += 1

    # ------------------------------------------------------------------ out

    def release(self, now: float, flush: bool = False) -> Released:
        """Everything ready by ``now`` (with ``flush``: everything waiting), since the last release."""
        for key in [k for k, s in self._spans.items() if flush or s.deadline <= now]:
            waiting = self._spans.pop(key)
            self._open[waiting.batch] -= 1
            self._out.unjoined += 1
            self._emit(waiting, [])
        for key in [k for k, held in self._logs.items() if flush or held.deadline <= now]:
            held = self._logs.pop(key)
            for b in held.batches:
                self._open[b] -= 1
            self._out.orphan_logs += 1
        out, self._out = self._out, Released()
        return out

    def is_open(self, batch: int) -> bool:
        """Whether spans or logs of ``batch`` still wait (its offsets must not be committed yet)."""
        return self._open.get(batch, 0) > 0

    def next_deadline(self) -> float | None:
        """When the next wait ends (None when nothing waits)."""
        deadlines = [s.deadline for s in self._spans.values()] + [h.deadline for h in self._logs.values()]
        return min(deadlines, default=None)

    def _emit(self, held: _Span, log_events: LogEvents) -> None:
        record = self._record(held, log_events)
        if record is not None:
            self._publish(record, joined=bool(log_events))

    def _record(self, held: _Span, log_events: LogEvents) -> dict[str, Any] | None:
        """The span's record with ``log_events`` joined; None (and a dead letter) when invalid."""
        try:
            return span_record(held.span, held.resource, log_events)
        except DecodeError as exc:
            bad = rejected(held.span, exc)
            self._out.dead_letters.append(self.processors[held.topic].dead(held.message, bad.reason, bad.detail))
            return None

    def _publish(self, record: dict[str, Any], joined: bool) -> None:
        self._out.events.append((record["service_name"].encode(), EventCodec.encode_json(record)))
        self._out.spans += 1
        self._out.joined += joined


def _dead_letter_settings(processors: dict[str, OtlpProcessor]) -> tuple[Any, str]:
    first = next(iter(processors.values()), OtlpProcessor(""))
    return first.redactor, first.dead_letter_payload
