"""Count a producer-side duplicate once: the same event sent twice (a retry storm, an app that
re-sends on timeout) arrives at another offset, so the replay guard does not see it.

ReplacingMergeTree collapses such rows at read time (FINAL), but materialized views count every
insert, so the rollups would count the event twice. Before an insert this guard drops rows
whose event (``event_id`` plus ``extra_key`` columns, at the same ``timestamp``) is already in
the batch or already stored, with one query per batch: an ``event_id IN`` lookup restricted to
the batch's time range, which prunes by partition and primary key.

Guarantee and horizon: a duplicate carries the original's ``event_id`` and ``timestamp`` (the
producer re-sends the same event), and it counts once in tables and rollups for as long as the
original raw row is kept (``LLMWATCH_RAW_TTL_DAYS``). Duplicates are serialised because one
process writes each table's batches (the group commit); with several store processes on a
server, key the calls topic by event id (the producer does) so duplicates share a partition.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence


def _instant(value: Any) -> Any:
    """A timestamp as epoch milliseconds: rows carry aware UTC datetimes, the embedded engine
    answers naive ones (in UTC)."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return round(aware.timestamp() * 1000)
    return value


class _KeyGuard:
    """Drops rows whose ``key`` is repeated in the batch or already stored (one ``_stored``
    lookup per batch); subclasses say what the key is and how to look it up."""

    dropped = 0  # rows dropped by the last filter()

    def key(self, row: list[Any]) -> Any:
        raise NotImplementedError

    def _stored(self, rows: list[list[Any]]) -> set[Any]:
        raise NotImplementedError

    def filter(self, rows: list[list[Any]]) -> list[list[Any]]:
        """The rows whose key is neither earlier in ``rows`` nor stored already."""
        unique: dict[Any, list[Any]] = {}
        for row in rows:
            unique.setdefault(self.key(row), row)
        stored = self._stored(list(unique.values())) if unique else set()
        kept = [row for key, row in unique.items() if key not in stored]
        self.dropped = len(rows) - len(kept)
        return kept


class DuplicateGuard(_KeyGuard):
    """Filters rows whose (event_id, *extra_key, timestamp) is repeated in the batch or stored."""

    def __init__(self, client: Any, table: str, column_names: Sequence[str], extra_key: Sequence[str] = ()) -> None:
        self.client = client
        self.table = table
        self.extra_key = tuple(extra_key)
        idx = {name: i for i, name in enumerate(column_names)}
        self._columns = (idx["event_id"], *(idx[c] for c in self.extra_key), idx["timestamp"])
        self._event_id = idx["event_id"]
        self._timestamp = idx["timestamp"]
        self.dropped = 0  # rows dropped by the last filter()

    def key(self, row: list[Any]) -> tuple:
        return (*(row[i] for i in self._columns[:-1]), _instant(row[self._timestamp]))

    def _stored(self, rows: list[list[Any]]) -> set[tuple]:
        stamps = [row[self._timestamp] for row in rows]
        columns = ", ".join(("event_id", *self.extra_key, "timestamp"))
        result = self.client.query(
            f"SELECT {columns} FROM {self.table} "
            "WHERE timestamp BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')} "
            "AND event_id IN {ids:Array(String)}",
            parameters={"lo": min(stamps), "hi": max(stamps), "ids": sorted({row[self._event_id] for row in rows})},
        ).result_rows
        return {(*r[:-1], _instant(r[-1])) for r in result}


class StoredIdGuard(_KeyGuard):
    """Filters rows whose id column is repeated in the batch or already stored.

    For tables whose rows carry an id that names what they say, not when they were written: a
    drift alarm's report id is derived from its key, signal and alarm count, so the worker that
    takes a partition over and reports the same alarm again writes the same id, and this guard
    keeps the alarm counted once. The lookup covers ``horizon_days`` before the batch's oldest row
    (a re-report follows the original within minutes).
    """

    def __init__(self, client: Any, table: str, column_names: Sequence[str], id_column: str, time_column: str,
                 horizon_days: int = 7) -> None:
        self.client = client
        self.table = table
        self.id_column, self.time_column = id_column, time_column
        self._id = list(column_names).index(id_column)
        self._time = list(column_names).index(time_column)
        self.horizon_days = horizon_days
        self.dropped = 0

    def key(self, row: list[Any]) -> Any:
        return row[self._id]

    def _stored(self, rows: list[list[Any]]) -> set[Any]:
        lo = min(row[self._time] for row in rows)
        result = self.client.query(
            f"SELECT DISTINCT {self.id_column} FROM {self.table} "
            f"WHERE {self.time_column} >= {{lo:DateTime64(3, 'UTC')}} - INTERVAL {int(self.horizon_days)} DAY "
            f"AND {self.id_column} IN {{ids:Array(String)}}",
            parameters={"lo": lo, "ids": sorted({self.key(row) for row in rows})},
        ).result_rows
        return {r[0] for r in result}
