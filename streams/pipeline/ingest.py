"""Ingest processing, free of Faust: raw messages in, ClickHouse rows and dead letters out.

>>> from streams.pipeline.codec import EventCodec
>>> proc = IngestProcessor(EventCodec(), topic="llm.calls")
>>> ok = EventCodec.encode_json({"event_id": "a", "timestamp_ms": 1, "service_name": "s", "request_model": "m"})
>>> batch = proc.process([RawMessage(None, ok, 0, 10), RawMessage(None, b"", 0, 11)])
>>> len(batch.rows), batch.dead_letters[0].reason
(1, 'empty')
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

from streams.pipeline.codec import DecodeError, EventCodec
from streams.pipeline.dead_letter import DeadLetter
from streams.pipeline.registry import RegistryUnavailable
from streams.pipeline.redaction import Redactor
from streams.storage.rows import LLM_CALL_COLUMNS, NO_REDACTION, llm_call_row

log = logging.getLogger(__name__)


_PARTITION = [name for name, _ in LLM_CALL_COLUMNS].index("kafka_partition")
_OFFSET = [name for name, _ in LLM_CALL_COLUMNS].index("kafka_offset")


#: What a dead letter carries: the message with the redaction rules applied to its bytes (the
#: default: the dead-letter topic is published too), or the original bytes (for replaying them
#: once the cause is fixed, where the topic is as protected as the source).
DEAD_LETTER_PAYLOADS = ("redacted", "original")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def redact_bytes(redactor: Redactor, raw: bytes | None) -> bytes | None:
    r"""The redaction rules over raw bytes, whatever their format: the patterns are ASCII, so
    the bytes are read one character per byte (latin-1) and PII is replaced while every other
    byte is kept. In JSON only the string literals are redacted, so numbers (a 13-digit
    timestamp looks like a phone number) stay as sent.

    >>> from streams.pipeline.redaction import Redactor
    >>> redact_bytes(Redactor(), b'{"to": "bob@example.com", "ts": 1764664000000, "x": "\xc3\xa9"}')
    b'{"to": "[EMAIL]", "ts": 1764664000000, "x": "\xc3\xa9"}'
    >>> redact_bytes(Redactor.from_names("emails"), b'\x00\x02\x1ebob@example.com')
    b'\x00\x02\x1e[EMAIL]'
    """
    if not raw or not redactor.rules:
        return raw
    text = raw.decode("latin-1")
    if text.lstrip()[:1] == "{":
        text = _JSON_STRING.sub(lambda m: redactor.redact(m.group()), text)
    else:
        text = redactor.redact(text)
    return text.encode("latin-1")


class RawMessage(NamedTuple):
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    headers_bytes: int = 0  # names and values of the Kafka headers together

    def size(self) -> int:
        """What the size limit counts: key, value and headers."""
        return len(self.key or b"") + len(self.value or b"") + self.headers_bytes


@dataclass
class IngestBatch:
    """What one batch of raw messages became."""

    rows: list[list[Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    repaired_strings: int = 0  # strings whose lone surrogates became U+FFFD (see streams.pipeline.codec)


class IngestProcessor:
    """Decodes and validates a batch; every failure becomes a :class:`DeadLetter`, never an exception."""

    def __init__(
        self, codec: EventCodec, topic: str, redactor: Redactor = NO_REDACTION, dead_letter_payload: str = "redacted"
    ) -> None:
        if dead_letter_payload not in DEAD_LETTER_PAYLOADS:
            raise ValueError(
                f"LLMWATCH_DEAD_LETTER_PAYLOAD={dead_letter_payload!r}; fix: one of {', '.join(DEAD_LETTER_PAYLOADS)}"
            )
        self.codec = codec
        self.topic = topic
        self.redactor = redactor
        self.dead_letter_payload = dead_letter_payload

    def process(self, messages: Sequence[RawMessage]) -> IngestBatch:
        batch = IngestBatch()
        for msg in messages:
            try:
                self._check_size(msg)
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
            batch.repaired_strings += decoded.repairs
        return batch

    def decode_or_none(self, msg: RawMessage) -> dict[str, Any] | None:
        """The decoded record, or None for a message the ingest path dead-letters."""
        try:
            self._check_size(msg)
            return self.codec.decode(msg.value).record
        except RegistryUnavailable:
            raise
        except Exception:
            return None

    def storage_rejected(self, messages: Sequence[RawMessage], refused: Sequence[tuple[list[Any], str]]) -> list[DeadLetter]:
        """Dead letters (reason ``storage_rejected``, the engine's message) for the rows of
        ``messages`` that ClickHouse refused on their own."""
        if not refused:
            return []
        by_position = {(m.partition, m.offset): m for m in messages}
        return [
            self._dead(by_position[(row[_PARTITION], row[_OFFSET])], "storage_rejected", message) for row, message in refused
        ]

    def _check_size(self, msg: RawMessage) -> None:
        limit = self.codec.limits.max_bytes
        if msg.size() > limit:
            raise DecodeError("too_large", f"key, value and headers are {msg.size()} bytes, over the {limit}-byte limit")

    def _dead(self, msg: RawMessage, reason: str, error: str) -> DeadLetter:
        value, key = msg.value, msg.key
        if self.dead_letter_payload == "redacted":
            value, key = redact_bytes(self.redactor, value), redact_bytes(self.redactor, key)
        return DeadLetter(value, key, reason, error, self.topic, msg.partition, msg.offset)


def raw_message(message: Any) -> RawMessage:
    """A consumed Kafka message (Faust's or aiokafka's: key, value, partition, offset, headers)."""
    headers = message.headers
    if not headers:  # most messages: no generator and sum to build per message
        return RawMessage(message.key, message.value, message.partition, message.offset)
    items = headers.items() if isinstance(headers, dict) else headers
    size = sum(len(k) + len(v or b"") for k, v in items)
    return RawMessage(message.key, message.value, message.partition, message.offset, size)
