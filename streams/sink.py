"""A batching ClickHouse sink in the add / flush / write shape.

``add`` buffers rows; ``flush`` writes the buffer with one insert and clears it only once the
write succeeded. A failed write is retried with exponential backoff (the caller does not commit
offsets meanwhile), so a ClickHouse outage delays data but never drops it.

>>> sink = ClickHouseSink(client=None, table="t", columns=(("a", "UInt8"),), writer=lambda rows: None)
>>> sink.add([1]); len(sink)
1
>>> sink.flush(); len(sink)
1
0
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

from streams.replay_guard import ReplayGuard

log = logging.getLogger(__name__)


class ClickHouseSink:
    """Buffers rows for one table and writes them in batches."""

    def __init__(
        self,
        client: Any,
        table: str,
        columns: Sequence[tuple[str, str]],
        max_retries: int | None = None,
        backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
        writer: Callable[[list[list[Any]]], None] | None = None,
        replay_key: Sequence[str] | None = None,
    ) -> None:
        self.client = client
        self.table = table
        self.column_names = [name for name, _ in columns]
        self.column_types = [kind for _, kind in columns]
        self.max_retries = max_retries  # None: retry until it works
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._writer = writer or self.write
        # With replay_key set, rows already stored by a crashed predecessor are dropped (see replay_guard).
        self.guard = ReplayGuard(client, table, self.column_names, replay_key) if replay_key is not None else None
        self._buffer: list[list[Any]] = []
        self.rows_written = 0
        self.inserts = 0  # insert statements that succeeded
        self.write_failures = 0

    def __len__(self) -> int:
        return len(self._buffer)

    def add(self, row: list[Any]) -> None:
        self._buffer.append(row)

    def flush(self) -> int:
        """Write everything buffered; returns the number of rows inserted (replays excluded)."""
        if not self._buffer:
            return 0
        delay = self.backoff_s
        attempt = 0
        rows: list[list[Any]] = []
        while True:
            try:
                rows = self.guard.filter(self._buffer) if self.guard else self._buffer
                if rows:
                    self._writer(rows)
                    self.inserts += 1
                    if self.guard:
                        self.guard.written(rows)
                break
            except Exception as exc:
                attempt += 1
                self.write_failures += 1
                if self.max_retries is not None and attempt > self.max_retries:
                    raise
                log.warning("insert into %s failed (attempt %d), retrying in %.1fs: %s", self.table, attempt, delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
        written = len(rows)
        self.rows_written += written
        self._buffer = []
        return written

    def write(self, rows: list[list[Any]]) -> None:
        """One insert with explicit column names and types (no type inference round trip)."""
        self.client.insert(self.table, rows, column_names=self.column_names, column_type_names=self.column_types)
