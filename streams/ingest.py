"""Ingest processing, free of Faust: raw messages in, ClickHouse rows and dead letters out.

>>> from streams.codec import EventCodec
>>> proc = IngestProcessor(EventCodec(), topic="llm.calls")
>>> ok = EventCodec.encode_json({"event_id": "a", "timestamp_ms": 1, "service_name": "s", "request_model": "m"})
>>> batch = proc.process([RawMessage(None, ok, 0, 10), RawMessage(None, b"", 0, 11)])
>>> len(batch.rows), batch.dead_letters[0].reason
(1, 'empty')
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

from streams.codec import DecodeError, EventCodec
from streams.dead_letter import DeadLetter
from streams.registry import RegistryUnavailable
from streams.redaction import Redactor
from streams.rows import NO_REDACTION, llm_call_row

log = logging.getLogger(__name__)


class RawMessage(NamedTuple):
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


@dataclass
class IngestBatch:
    """What one batch of raw messages became."""

    rows: list[list[Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class IngestProcessor:
    """Decodes and validates a batch; every failure becomes a :class:`DeadLetter`, never an exception."""

    def __init__(self, codec: EventCodec, topic: str, redactor: Redactor = NO_REDACTION) -> None:
        self.codec = codec
        self.topic = topic
        self.redactor = redactor

    def process(self, messages: Sequence[RawMessage]) -> IngestBatch:
        batch = IngestBatch()
        for msg in messages:
            try:
                decoded = self.codec.decode(msg.value)
                row = llm_call_row(decoded.record, decoded.schema_id, self.topic, msg.partition, msg.offset, self.redactor)
            except DecodeError as exc:
                batch.dead_letters.append(self._dead(msg, exc.reason, exc.detail))
                continue
            except RegistryUnavailable:
                raise  # not the message's fault: the caller retries rather than rejecting it
            except Exception as exc:  # a bug or an input we did not foresee: still never lose the worker
                log.exception("unexpected error decoding %s[%d]@%d", self.topic, msg.partition, msg.offset)
                batch.dead_letters.append(self._dead(msg, "internal_error", repr(exc)))
                continue
            batch.rows.append(row)
            batch.records.append(decoded.record)
        return batch

    def decode_or_none(self, msg: RawMessage) -> dict[str, Any] | None:
        """The decoded record, or None for a message the ingest path dead-letters."""
        try:
            return self.codec.decode(msg.value).record
        except RegistryUnavailable:
            raise
        except Exception:
            return None

    def _dead(self, msg: RawMessage, reason: str, error: str) -> DeadLetter:
        return DeadLetter(msg.value, msg.key, reason, error, self.topic, msg.partition, msg.offset)
