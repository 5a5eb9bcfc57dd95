"""The dead-letter path: one place that says what a rejected message looks like.

A dead letter keeps the original bytes untouched and carries, in Kafka headers, why it was
rejected and where it came from, so it can be inspected and replayed. It always fits the
broker: one larger than ``max_bytes`` (key, value and headers together) is truncated, and says
so in headers that give the original size and the value's sha256. Delivery is retried until
the broker takes it, so a dead letter can neither crash the agent nor cost the valid events of
its batch.

>>> big = DeadLetter(b"v" * 5000, b"k" * 5000, "too_large", "", "llm.calls", 0, 7)
>>> fitted = big.fitted(4096)
>>> fitted.size() <= 4096, parse_headers(fitted.headers())[HEADER_TRUNCATED]
(True, 'key,value')
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Iterable, Sequence

from streams.kafka.send_retry import send_all

log = logging.getLogger(__name__)

HEADER_REASON = "llmwatch.dlq.reason"
HEADER_ERROR = "llmwatch.dlq.error"
HEADER_TOPIC = "llmwatch.dlq.source.topic"
HEADER_PARTITION = "llmwatch.dlq.source.partition"
HEADER_OFFSET = "llmwatch.dlq.source.offset"
HEADER_ORIGINAL_SIZE = "llmwatch.dlq.original.size"  # bytes of key + value as received
HEADER_ORIGINAL_SHA256 = "llmwatch.dlq.original.sha256"  # of the value as received
HEADER_TRUNCATED = "llmwatch.dlq.truncated"  # which of key, value were cut
MAX_ERROR_CHARS = 1000
#: Kafka's default message.max.bytes is 1 MiB; leave room for the record batch framing.
DEFAULT_MAX_BYTES = 1_000_000
#: What a key keeps when a dead letter must shrink: enough to recognise it.
TRUNCATED_KEY_BYTES = 256


@dataclass(frozen=True)
class DeadLetter:
    """A rejected message: original key/value plus the reason and its source position."""

    value: bytes | None
    key: bytes | None
    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    truncation: tuple[tuple[str, bytes], ...] = ()  # the HEADER_ORIGINAL_*/HEADER_TRUNCATED headers, once cut

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers describing the rejection."""
        return [
            (HEADER_REASON, self.reason.encode()),
            (HEADER_ERROR, self.error[:MAX_ERROR_CHARS].encode("utf-8", "replace")),
            (HEADER_TOPIC, self.topic.encode()),
            (HEADER_PARTITION, str(self.partition).encode()),
            (HEADER_OFFSET, str(self.offset).encode()),
            *self.truncation,
        ]

    def size(self) -> int:
        """Bytes the broker counts against its limit: key, value and headers."""
        return len(self.key or b"") + len(self.value or b"") + sum(len(k) + len(v) for k, v in self.headers())

    def fitted(self, max_bytes: int = DEFAULT_MAX_BYTES) -> "DeadLetter":
        """This dead letter, or a truncated copy of at most ``max_bytes`` that says what was cut."""
        if self.size() <= max_bytes:
            return self
        key, value = self.key or b"", self.value or b""
        cut = []
        if len(key) > TRUNCATED_KEY_BYTES:
            key, cut = key[:TRUNCATED_KEY_BYTES], ["key"]
        truncation = (
            (HEADER_ORIGINAL_SIZE, str(len(self.key or b"") + len(self.value or b"")).encode()),
            (HEADER_ORIGINAL_SHA256, hashlib.sha256(self.value or b"").hexdigest().encode()),
            (HEADER_TRUNCATED, b"key,value"),  # the longest value, so the room is never underestimated
        )
        shell = replace(self, key=key, value=b"", truncation=truncation)
        room = max(0, max_bytes - shell.size())
        if len(value) > room:
            value, cut = value[:room], cut + ["value"]
        truncation = truncation[:2] + ((HEADER_TRUNCATED, ",".join(cut).encode()),)
        return replace(self, key=key or None, value=value, truncation=truncation)


def parse_headers(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka headers of a dead letter as a plain dict (for summaries and tests)."""
    return {k: v.decode("utf-8", "replace") for k, v in (headers or [])}


Send = Callable[[DeadLetter], Awaitable[Awaitable[Any]]]


async def deliver(
    send: Send,
    letters: Sequence[DeadLetter],
    max_bytes: int = DEFAULT_MAX_BYTES,
    backoff_s: float = 0.2,
    max_backoff_s: float = 10.0,
) -> None:
    """Produce every dead letter, fitted to ``max_bytes``; retried with backoff until the
    broker acknowledges each (the batch is not committed meanwhile, so nothing is lost).

    ``send(letter)`` starts a produce and returns its delivery future (Faust's
    ``topic.send``). A letter the broker still finds too large is cut to a tenth each time.
    """

    def refit(letter: DeadLetter, exc: BaseException) -> DeadLetter:
        return letter.fitted(max(1024, letter.size() // 10)) if _too_large(exc) else letter

    await send_all(send, [letter.fitted(max_bytes) for letter in letters], refit=refit, backoff_s=backoff_s,
                   max_backoff_s=max_backoff_s, what="dead letter")


def _too_large(exc: BaseException) -> bool:
    return "TooLarge" in type(exc).__name__ or "too large" in str(exc).lower()
