"""Rebuild rollup buckets from the table after a crash replay, so the two agree again.

An insert writes the table's part and then each materialized view's part; those writes are not
one transaction. A worker killed between them (SIGKILL, power loss) leaves rows in the table that
no rollup counted, and the replay guard then keeps the re-read rows out of the table, so the
views never see them again: once, 19,800 of 20,000 calls reached ``llm_calls_1m``.

So when the guard drops replayed rows, the sink hands their timestamps here. For every rollup fed
from the table, the buckets (minutes or hours) holding those timestamps are deleted and computed
again from the table (``FINAL``) with the views' own SELECTs, read from the migrations. A replay
happens only after a crash, and touches the few buckets of its batch.

Caveat: with several writers on a ClickHouse server, an insert into the same bucket from another
process between the delete and the re-insert is counted twice or not at all; the embedded engine
has one writer.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from schemas import migrations

log = logging.getLogger(__name__)

_VIEW = re.compile(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\s+(SELECT\s.*)", re.S)
_FIRST_ITEM = re.compile(r"SELECT\s+(.+?)\s+AS\s+(\w+),", re.S)

#: Bucket functions the rollups use, as Python: a rollup with another one fails the tests.
_FLOORS: dict[str, Callable[[dt.datetime], dt.datetime]] = {
    "toStartOfMinute": lambda t: t.replace(second=0, microsecond=0),
    "toStartOfHour": lambda t: t.replace(minute=0, second=0, microsecond=0),
}


#: A view whose rows are the source's rows reshaped (``SELECT event_id, ...``, e.g. quality verdicts
#: split by check into ``quality_scores``): repaired by inserting the replayed rows' output again,
#: which the target's ReplacingMergeTree collapses with what did arrive.
_ROW_VIEW = re.compile(r"SELECT\s+event_id\s*,", re.S)


@dataclass(frozen=True)
class Rollup:
    """A rollup table fed from ``source`` by one or more views (or, with ``floor`` None, a row view)."""

    target: str
    column: str  # the target's time bucket column
    bucket_sql: str  # that column as an expression over the source's columns
    floor: Callable[[dt.datetime], dt.datetime] | None
    selects: tuple[str, ...]  # the views' SELECTs, each reading ``FROM source``


def rollups_of(source: str) -> list[Rollup]:
    """Every rollup the migrations feed from ``source``, with its views' SELECTs."""
    by_target: dict[str, list[str]] = {}
    for migration in migrations():
        for statement in migration.statements():
            match = _VIEW.match(statement)
            if match and re.search(rf"\bFROM {source}\b", match[3]):
                by_target.setdefault(match[2], []).append(match[3])
    out = []
    for target, selects in by_target.items():
        if _ROW_VIEW.match(selects[0]):
            out.append(Rollup(target, "timestamp", "timestamp", None, tuple(selects)))
            continue
        first = _FIRST_ITEM.match(selects[0])
        if first is None:
            raise ValueError(f"{target}: the view's first column must be its time bucket")
        function = first[1].split("(", 1)[0]
        if function not in _FLOORS:
            raise ValueError(f"{target}: unknown bucket function {function}; add it to _FLOORS")
        out.append(Rollup(target, first[2], first[1], _FLOORS[function], tuple(selects)))
    return out


class RollupRepair:
    """Recomputes the rollup buckets of replayed rows for one source table."""

    def __init__(self, client: Any, source: str) -> None:
        self.client = client
        self.source = source
        self.rollups = rollups_of(source)
        self.repaired_buckets = 0

    def repair(self, timestamps: Iterable[dt.datetime]) -> int:
        """Rebuild every bucket that holds one of ``timestamps``; returns how many were rebuilt."""
        stamps = [t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc) for t in timestamps]
        rebuilt = 0
        for rollup in self.rollups:
            if rollup.floor is None:
                rebuilt += self._reinsert(rollup, stamps)
                continue
            buckets = sorted({rollup.floor(t.astimezone(dt.timezone.utc)) for t in stamps})
            if not buckets:
                continue
            listed = ", ".join(f"toDateTime('{b:%Y-%m-%d %H:%M:%S}', 'UTC')" for b in buckets)
            self.client.command(
                f"ALTER TABLE {rollup.target} DELETE WHERE {rollup.column} IN ({listed}) SETTINGS mutations_sync = 2"
            )
            self._insert(rollup, f"{rollup.bucket_sql} IN ({listed})")
            rebuilt += len(buckets)
        self.repaired_buckets += rebuilt
        if rebuilt:
            log.warning("replay after a crash: rebuilt %d rollup bucket(s) of %s from the table", rebuilt, self.source)
        return rebuilt

    def _reinsert(self, rollup: Rollup, stamps: list[dt.datetime]) -> int:
        """A row view: its output for the source rows at exactly ``stamps``, inserted again."""
        exact = sorted({t.astimezone(dt.timezone.utc) for t in stamps})
        if not exact:
            return 0
        listed = ", ".join(f"toDateTime64('{t:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')" for t in exact)
        self._insert(rollup, f"{rollup.bucket_sql} IN ({listed})")
        return len(exact)

    def _insert(self, rollup: Rollup, where: str) -> None:
        """Run each of ``rollup``'s SELECTs over the source rows matching ``where`` into its target."""
        rows = f"(SELECT * FROM {self.source} FINAL WHERE {where}) AS {self.source}"
        for select in rollup.selects:
            query = re.sub(rf"\bFROM {self.source}\b", lambda _: f"FROM {rows}", select, count=1)
            columns = [row[0] for row in self.client.query(f"DESCRIBE ({query})").result_rows]
            self.client.command(f"INSERT INTO {rollup.target} ({', '.join(columns)}) {query}")
