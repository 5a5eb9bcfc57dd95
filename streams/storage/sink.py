"""A batching ClickHouse sink in the add / flush / write shape.

``add`` buffers rows; ``flush`` writes the buffer with one insert and clears it only once the
write succeeded. A failed write is retried with exponential backoff (the caller does not commit
offsets meanwhile), so a ClickHouse outage delays data but never drops it.

Only transient failures are retried that way: connection loss, a full disk, too many parts,
timeouts, and anything we cannot classify. A *data* error (a value the client cannot encode or
the engine will not take, see :func:`is_data_error`) is the rows' fault, and retrying it would
stall the partition for good: the batch is bisected, the good rows are stored, and the rows
that fail alone are handed back in :attr:`ClickHouseSink.rejected` with the engine's message
(the ingest agent dead-letters them as ``storage_rejected``).

>>> sink = ClickHouseSink(client=None, table="t", columns=(("a", "UInt8"),), writer=lambda rows: None)
>>> sink.add([1]); len(sink)
1
>>> sink.flush(); len(sink)
1
0
"""
from __future__ import annotations

import logging
import re
import struct
import time
from typing import Any, Callable, Sequence

from streams.storage.duplicate_guard import DuplicateGuard, StoredIdGuard
from streams.storage.replay_guard import ReplayGuard
from streams.storage.rollup_repair import RollupRepair

log = logging.getLogger(__name__)

#: ClickHouse error codes that blame the inserted values (ErrorCodes.cpp): bisect, never retry.
DATA_ERROR_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,   # ATTEMPT_TO_READ_AFTER_EOF (a malformed native block)
    41, 38, 26,  # CANNOT_PARSE_DATETIME / DATE / QUOTED_STRING
    43,   # ILLEGAL_TYPE_OF_ARGUMENT
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE (a rollup view's cast, NaN into an integer)
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    190,  # SIZES_OF_ARRAYS_DONT_MATCH
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    407,  # DECIMAL_OVERFLOW
})
_CODE = re.compile(r"\bCode: (\d+)\b")

#: Tables whose rows are identified by an id column (and a time column to bound the lookup):
#: a row whose id is already stored is dropped (see StoredIdGuard).
UNIQUE_IDS: dict[str, tuple[str, str]] = {"drift_reports": ("report_id", "window_end")}


def is_data_error(exc: BaseException) -> bool:
    """Whether an insert failed because of the rows (rather than the connection or the server).

    >>> is_data_error(UnicodeEncodeError("utf-8", "\\ud800", 0, 1, "surrogates not allowed"))
    True
    >>> is_data_error(ConnectionResetError("peer reset")), is_data_error(RuntimeError("Code: 252. Too many parts"))
    (False, False)
    >>> is_data_error(RuntimeError("Code: 70. DB::Exception: Cannot convert NaN to UInt64"))
    True
    """
    if isinstance(exc, (UnicodeError, OverflowError, TypeError, struct.error)):
        return True
    if isinstance(exc, (OSError, TimeoutError)):
        return False
    codes = {int(c) for c in _CODE.findall(str(exc))}
    if codes:
        return bool(codes & DATA_ERROR_CODES)
    return isinstance(exc, ValueError) and type(exc).__module__.split(".")[0] != "clickhouse_connect"


def _dropped(before: list[list[Any]], after: list[list[Any]]) -> list[list[Any]]:
    """The rows of ``before`` that a filter left out of ``after`` (the same row objects)."""
    if len(after) == len(before):
        return []
    kept = {id(row) for row in after}
    return [row for row in before if id(row) not in kept]


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
        dedup_key: Sequence[str] | None = None,
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
        # Replayed rows may be in the table but not in its rollups (a kill between the table's
        # part and the views' parts): their buckets are rebuilt from the table (see rollup_repair).
        self.rollup_repair = (
            RollupRepair(client, table) if self.guard is not None and "timestamp" in self.column_names else None
        )
        # With dedup_key set, an event already stored (or repeated in the batch) is dropped too.
        self.dedup: DuplicateGuard | StoredIdGuard | None = (
            DuplicateGuard(client, table, self.column_names, dedup_key) if dedup_key is not None else None
        )
        if self.dedup is None and table in UNIQUE_IDS:
            self.dedup = StoredIdGuard(client, table, self.column_names, *UNIQUE_IDS[table])
        self.duplicates_dropped = 0  # by the last flush
        #: time.monotonic() of the first failure of the insert being retried now, else None
        self.failing_since: float | None = None
        self._buffer: list[list[Any]] = []
        #: Rows of the last flush that the engine refused on their own, with its message.
        self.rejected: list[tuple[list[Any], str]] = []
        self.rows_written = 0
        self.inserts = 0  # insert statements that succeeded
        self.write_failures = 0

    def __len__(self) -> int:
        return len(self._buffer)

    def add(self, row: list[Any]) -> None:
        self._buffer.append(row)

    def flush(self) -> int:
        """Write everything buffered; returns the number of rows inserted (replays and rejected
        rows excluded). Rows refused for their data are left in :attr:`rejected`."""
        self.rejected = []
        self.duplicates_dropped = 0
        if not self._buffer:
            return 0
        delay = self.backoff_s
        attempt = 0
        written = 0
        while True:
            try:
                self.rejected = []  # a retry re-decides every row not stored yet
                rows = self.guard.filter(self._buffer) if self.guard else self._buffer
                replayed = _dropped(self._buffer, rows)
                if self.dedup and rows:
                    rows = self.dedup.filter(rows)
                    self.duplicates_dropped = self.dedup.dropped
                written = self._write_isolating(rows) if rows else 0
                if replayed and self.rollup_repair is not None:
                    at = self.column_names.index("timestamp")
                    self.rollup_repair.repair(row[at] for row in replayed)
                break
            except Exception as exc:
                attempt += 1
                self.write_failures += 1
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                if self.max_retries is not None and attempt > self.max_retries:
                    raise
                log.warning("insert into %s failed (attempt %d), retrying in %.1fs: %s", self.table, attempt, delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
        self.failing_since = None
        self.rows_written += written
        self._buffer = []
        return written

    def _write_isolating(self, rows: list[list[Any]]) -> int:
        """Insert ``rows``; on a data error, bisect and insert the halves, so only the rows that
        fail alone are rejected. A transient error raises (the caller retries what is left:
        the replay guard skips rows that halves already stored)."""
        try:
            self._writer(rows)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            if len(rows) == 1:
                message = " ".join(str(exc).split())[:1000] or type(exc).__name__
                log.warning("%s refused a row (%s[%s]@%s): %s", self.table, *self._position(rows[0]), message)
                self.rejected.append((rows[0], message))
                return 0
            middle = len(rows) // 2
            return self._write_isolating(rows[:middle]) + self._write_isolating(rows[middle:])
        self.inserts += 1
        if self.guard:
            self.guard.written(rows)
        return len(rows)

    def _position(self, row: list[Any]) -> tuple[Any, Any, Any]:
        names = self.column_names
        return tuple(row[names.index(c)] if c in names else "?" for c in ("kafka_topic", "kafka_partition", "kafka_offset"))

    def write(self, rows: list[list[Any]]) -> None:
        """One insert with explicit column names and types (no type inference round trip)."""
        self.client.insert(self.table, rows, column_names=self.column_names, column_type_names=self.column_types)
