"""Drop rows a crashed worker already wrote before it could commit their offsets.

Offsets are committed only after ClickHouse accepted a batch, so after a crash the new worker
re-reads messages whose rows may already be stored. ReplacingMergeTree collapses them at read
time (FINAL), but materialized views count every insert, so rollups would double-count. Every
row carries its source (topic, partition, offset); before an insert the guard asks ClickHouse
which of those positions are already there and drops them.

The check only runs for offsets at or below the highest offset stored for that partition (and
``extra_key`` values: in ``detections`` each detector has its own), known from one query per key
at start: in steady state it costs nothing, even when several agents share the table and run at
different positions.
"""
from __future__ import annotations

from typing import Any, Sequence


class ReplayGuard:
    """Filters rows whose source position (plus ``extra_key`` columns) already exists in ``table``."""

    def __init__(
        self,
        client: Any,
        table: str,
        column_names: Sequence[str],
        extra_key: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.table = table
        self.extra_key = tuple(extra_key)
        idx = {name: i for i, name in enumerate(column_names)}
        self._topic = idx["kafka_topic"]
        self._partition = idx["kafka_partition"]
        self._offset = idx["kafka_offset"]
        self._extra = tuple(idx[name] for name in self.extra_key)
        self._high_water: dict[tuple, int] = {}  # (topic, partition, *extra) -> highest stored offset

    def _key(self, row: list[Any]) -> tuple:
        return (row[self._topic], row[self._partition], *(row[i] for i in self._extra))

    def _stored_high_water(self, key: tuple) -> int:
        if key not in self._high_water:
            topic, partition, *extra = key
            where = "".join(f" AND {c} = {{x{i}:String}}" for i, c in enumerate(self.extra_key))
            params: dict[str, Any] = {"t": topic, "p": partition, **{f"x{i}": str(v) for i, v in enumerate(extra)}}
            rows = self.client.query(
                f"SELECT max(kafka_offset), count() FROM {self.table} "
                "WHERE kafka_topic = {t:String} AND kafka_partition = {p:UInt32}" + where,
                parameters=params,
            ).result_rows
            top, count = rows[0]
            self._high_water[key] = int(top) if count else -1
        return self._high_water[key]

    def filter(self, rows: list[list[Any]]) -> list[list[Any]]:
        """The rows not stored yet (call just before inserting them)."""
        suspects: dict[tuple[str, int], list[int]] = {}
        for row in rows:
            if row[self._offset] <= self._stored_high_water(self._key(row)):
                suspects.setdefault((row[self._topic], row[self._partition]), []).append(row[self._offset])
        if not suspects:
            return rows
        stored: set[tuple] = set()  # (topic, partition, *extra, offset) of rows already there
        extra_cols = "".join(f"{c}, " for c in self.extra_key)
        for (topic, partition), offsets in suspects.items():
            result = self.client.query(
                f"SELECT {extra_cols}kafka_offset FROM {self.table} "
                "WHERE kafka_topic = {t:String} AND kafka_partition = {p:UInt32} "
                "AND kafka_offset BETWEEN {lo:UInt64} AND {hi:UInt64}",
                parameters={"t": topic, "p": partition, "lo": min(offsets), "hi": max(offsets)},
            ).result_rows
            stored.update((topic, partition, *r) for r in result)
        return [row for row in rows if (*self._key(row), row[self._offset]) not in stored]

    def written(self, rows: list[list[Any]]) -> None:
        """Raise the high-water marks after a successful insert."""
        for row in rows:
            key = self._key(row)
            if row[self._offset] > self._high_water.get(key, -1):
                self._high_water[key] = row[self._offset]
