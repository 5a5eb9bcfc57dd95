"""The dead-letter path: one place that says what a rejected message looks like.

A dead letter keeps the original bytes untouched and carries, in Kafka headers, why it was
rejected and where it came from, so it can be inspected and replayed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

HEADER_REASON = "llmwatch.dlq.reason"
HEADER_ERROR = "llmwatch.dlq.error"
HEADER_TOPIC = "llmwatch.dlq.source.topic"
HEADER_PARTITION = "llmwatch.dlq.source.partition"
HEADER_OFFSET = "llmwatch.dlq.source.offset"
MAX_ERROR_CHARS = 1000


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

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers describing the rejection."""
        return [
            (HEADER_REASON, self.reason.encode()),
            (HEADER_ERROR, self.error[:MAX_ERROR_CHARS].encode("utf-8", "replace")),
            (HEADER_TOPIC, self.topic.encode()),
            (HEADER_PARTITION, str(self.partition).encode()),
            (HEADER_OFFSET, str(self.offset).encode()),
        ]


def parse_headers(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka headers of a dead letter as a plain dict (for summaries and tests)."""
    return {k: v.decode("utf-8", "replace") for k, v in (headers or [])}
