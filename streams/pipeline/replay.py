"""Re-run detectors on calls already stored in ``llm_calls`` (``llmwatch replay``); Faust-free.

After a detector upgrade, ``replay`` reads the calls of a time range back from ClickHouse, runs
them through the same :class:`~streams.pipeline.detection.DetectionRunner` groups the worker
builds (:mod:`streams.pipeline.runners`, so sample rates, canaries and the redaction of evidence
follow the same settings), and writes the verdicts to ``detection_replays``
(``schemas/ch_0005_detection_replays.sql``), never to ``detections``:

* ``detections`` has no ``detector_version`` in its sorting key: a replayed row there would
  replace the live one under ``FINAL``. ``detection_replays`` has it, so every version's verdict
  on a call stays, and old rows are not touched at all.
* Materialized views fire on inserts into ``detections``; none reads ``detection_replays``, so
  the live rollups never count a replay, and rollup repair (which rebuilds buckets from
  ``detections``) never sees one either. Version comparisons read both tables with ``FINAL``.
* The worker's replay and duplicate guards look only at ``detections``: a replayed verdict can
  neither make the worker drop a live one nor be dropped by it. Nothing is published to the
  results topic (the store role would write it into ``detections``).

Range: ``since`` is inclusive, ``until`` exclusive (``since <= timestamp < until``), so adjacent
ranges tile without overlap. Calls are read in pages in ``(timestamp, event_id)`` order: hour by
hour (one ``GROUP BY`` finds the hours that hold calls), keyset pages inside each hour, keys
first (two columns) and then the page's full rows, so no query sorts more than an hour.

Idempotent and resumable: before a page runs, the ``(event, detector, version)`` rows already in
``detection_replays`` are looked up; stateless groups (injection, grounding) skip calls that have
them, and rows already stored are never inserted again (also checked before each insert, so a
retried or bisected insert adds nothing twice). A crashed replay is resumed by running the same
command again. Drift is stateful: its verdicts depend on every earlier call of the key, so it is
fed every call of the range, in order, from a fresh detector (the range's first calls of each key
are its reference: alarms are relative to the range's start, not to the live worker's state,
whose checkpoint is from now, not from ``since``); it is deterministic (seeded), so a rerun
recomputes the same flagged rows and the insert check drops them.

What ``llm_calls`` lacks: nothing :class:`~detectors.base.Event` reads is missing (``tool_calls``,
``response_id`` and ``server_address`` are not stored, and no detector reads them), but the free
text was redacted at ingest (``LLMWATCH_REDACT``): live detectors saw the original text, replayed
ones see ``[EMAIL]``, ``[API_KEY]``... in its place. An empty stored answer or system text is
read back as None, as the worker sees a missing one.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from streams.config import Settings
from streams.pipeline.detection import DETECTION_COLUMNS, DetectionRunner, Positioned
from streams.pipeline.redaction import Redactor
from streams.storage.sink import ClickHouseSink

log = logging.getLogger(__name__)

REPLAY_TABLE = "detection_replays"
REPLAY_COLUMNS: tuple[tuple[str, str], ...] = (*DETECTION_COLUMNS, ("replay_id", "String"))
GROUPS = ("injection", "grounding", "drift", "quality")
HOUR_MS = 3_600_000
_TOPIC = [name for name, _ in DETECTION_COLUMNS].index("kafka_topic")
_RANGE = (
    "timestamp >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
    "AND timestamp < fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
)
#: What a call is read back as: enough to rebuild the record :func:`record_to_event` and the runner use.
CALL_SELECT = (
    "event_id, toUnixTimestamp64Milli(timestamp) AS ts_ms, service_name, deployment_environment, request_model, "
    "prompt_version, input_roles, input_contents, system_instructions, output_text, retrieved_context, latency_ms, "
    "input_tokens, output_tokens, cost_usd, status, attributes, kafka_topic, kafka_partition, kafka_offset"
)


@dataclass(frozen=True)
class StoredCall:
    """A call read back from ``llm_calls``: what the runner takes, and the topic it came from."""

    positioned: Positioned
    topic: str

    @property
    def key(self) -> tuple[int, str]:
        """``(timestamp_ms, event_id)``: the order calls are read in."""
        return self.positioned.record["timestamp_ms"], self.positioned.record["event_id"]


def call_from_row(row: Sequence[Any]) -> StoredCall:
    """Rebuild the decoded record from a row of :data:`CALL_SELECT`."""
    (event_id, ts_ms, service, env, model, prompt_version, roles, contents, system, output, context,
     latency, input_tokens, output_tokens, cost, status, attributes, topic, partition, offset) = row
    record = {
        "event_id": event_id,
        "timestamp_ms": int(ts_ms),
        "service_name": service,
        "deployment_environment": env,
        "request_model": model,
        "prompt_version": prompt_version,
        "input_messages": [{"role": r, "content": c} for r, c in zip(roles, contents)],
        "system_instructions": system or None,
        "output_text": output or None,
        "retrieved_context": list(context),
        "latency_ms": latency,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost,
        "status": status,
        "attributes": dict(attributes),
    }
    return StoredCall(Positioned(record, int(partition), int(offset)), topic)


@dataclass
class ReplayGroup:
    """One detector group of the worker (``injection`` includes canaries when configured)."""

    name: str
    runner: DetectionRunner
    stateful: bool = False  # must see every call in order (drift): never skipped on a resume

    @property
    def versions(self) -> dict[str, str]:
        """Detector name -> version, for every detector of the group (canary included)."""
        return {d.name: d.version for d in self.runner.detectors}

    def restart(self) -> None:
        """Fresh detector state for a stateful group: every replay starts it cold at ``since``,
        so a rerun computes the same verdicts as the run it repeats."""
        if self.stateful:
            self.runner.detectors = [d.clone() for d in self.runner.detectors]


def build_groups(settings: Settings, names: Sequence[str], redactor: Redactor | None = None) -> list[ReplayGroup]:
    """The worker's runners for ``names`` (loads their models)."""
    from streams.pipeline.runners import drift_runner, grounding_runner, injection_runner, quality_runner

    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; use {', '.join(GROUPS)}")
    redactor = redactor if redactor is not None else Redactor.from_names(settings.redact)
    build = {"injection": injection_runner, "grounding": grounding_runner, "drift": drift_runner, "quality": quality_runner}
    return [ReplayGroup(n, build[n](settings, redactor), stateful=n == "drift") for n in GROUPS if n in names]


def replay_id(since_ms: int, until_ms: int, groups: Sequence[ReplayGroup]) -> str:
    """Names one replay request: the same range and detector versions give the same id, so a
    resumed run writes under the id of the run it finishes."""
    versions = sorted((n, v) for g in groups for n, v in g.versions.items())
    return hashlib.blake2b(f"{since_ms}:{until_ms}:{versions}".encode(), digest_size=6).hexdigest()


# -- reading calls ------------------------------------------------------------------------------

def hours_with_calls(client: Any, since_ms: int, until_ms: int) -> list[tuple[int, int]]:
    """``[(hour, calls), ...]`` (hour = epoch ms // 3600000) of the range's non-empty hours."""
    rows = client.query(
        f"SELECT intDiv(toUnixTimestamp64Milli(timestamp), {HOUR_MS}) AS h, uniqExact(timestamp, event_id) "
        f"FROM llm_calls WHERE {_RANGE} GROUP BY h ORDER BY h",
        parameters={"lo": since_ms, "hi": until_ms},
    ).result_rows
    return [(int(h), int(n)) for h, n in rows]


def count_calls(client: Any, since_ms: int, until_ms: int) -> int:
    """Distinct calls in ``[since, until)`` (duplicates not merged yet count once)."""
    return sum(n for _, n in hours_with_calls(client, since_ms, until_ms))


def page_keys(client: Any, lo_ms: int, hi_ms: int, after: tuple[int, str] | None, size: int) -> list[tuple[int, str]]:
    """The next ``size`` ``(timestamp_ms, event_id)`` keys in ``[lo, hi)`` after ``after``."""
    where, params = _RANGE, {"lo": lo_ms, "hi": hi_ms, "n": size}
    if after is not None:
        where += " AND (timestamp, event_id) > (fromUnixTimestamp64Milli({ams:Int64}, 'UTC'), {aid:String})"
        params.update(ams=after[0], aid=after[1])
    rows = client.query(
        f"SELECT DISTINCT toUnixTimestamp64Milli(timestamp) AS ts_ms, event_id FROM llm_calls WHERE {where} "
        "ORDER BY ts_ms, event_id LIMIT {n:UInt32}",
        parameters=params,
    ).result_rows
    return [(int(t), e) for t, e in rows]


def fetch_calls(client: Any, keys: Sequence[tuple[int, str]]) -> list[StoredCall]:
    """The full calls of ``keys``, in their order (one row per key when duplicates are unmerged)."""
    rows = client.query(
        f"SELECT {CALL_SELECT} FROM llm_calls WHERE timestamp >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC') "
        "AND timestamp <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC') AND event_id IN {ids:Array(String)} "
        "LIMIT 1 BY timestamp, event_id",
        parameters={"lo": keys[0][0], "hi": keys[-1][0], "ids": sorted({e for _, e in keys})},
    ).result_rows
    calls = {c.key: c for c in map(call_from_row, rows)}
    return [calls[k] for k in keys if k in calls]


def iter_pages(client: Any, since_ms: int, until_ms: int, size: int) -> Iterator[list[StoredCall]]:
    """Pages of at most ``size`` calls of ``[since, until)`` in ``(timestamp, event_id)`` order."""
    for hour, _ in hours_with_calls(client, since_ms, until_ms):
        lo, hi = max(since_ms, hour * HOUR_MS), min(until_ms, (hour + 1) * HOUR_MS)
        after = None
        while True:
            keys = page_keys(client, lo, hi, after, size)
            if keys:
                yield fetch_calls(client, keys)
            if len(keys) < size:
                break
            after = keys[-1]


# -- writing verdicts ---------------------------------------------------------------------------

def stored_keys(client: Any, event_ids: Sequence[str], lo_ms: int, hi_ms: int) -> set[tuple[str, str, str]]:
    """``(event_id, detector, detector_version)`` already in ``detection_replays`` for these events
    (whose timestamps lie in ``[lo, hi]``)."""
    if not event_ids:
        return set()
    rows = client.query(
        f"SELECT event_id, detector, detector_version FROM {REPLAY_TABLE} "
        "WHERE timestamp >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
        "AND timestamp <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC') AND event_id IN {ids:Array(String)}",
        parameters={"lo": lo_ms, "hi": hi_ms, "ids": sorted(set(event_ids))},
    ).result_rows
    return {(e, d, v) for e, d, v in rows}


class ReplayWriter:
    """The sink's writer: inserts only rows not stored yet (a retry after a partial insert, or a
    concurrent replay of the same range, adds nothing twice); counts what it inserted."""

    def __init__(self, client: Any) -> None:
        """Write through ``client``."""
        self.client = client
        self.names = [name for name, _ in REPLAY_COLUMNS]
        self.types = [kind for _, kind in REPLAY_COLUMNS]
        self.inserted = 0

    def __call__(self, rows: list[list[Any]]) -> None:
        """Insert the rows of ``rows`` not in the table yet."""
        stamps = [round(r[8].timestamp() * 1000) for r in rows]
        stored = stored_keys(self.client, [r[0] for r in rows], min(stamps), max(stamps))
        fresh = [r for r in rows if (r[0], r[1], r[2]) not in stored]
        if fresh:
            self.client.insert(REPLAY_TABLE, fresh, column_names=self.names, column_type_names=self.types)
        self.inserted += len(fresh)


def _done(group: ReplayGroup, call: StoredCall, stored: set[tuple[str, str, str]]) -> bool:
    """A call this group already has a row for: its rows share a timestamp, hence a partition,
    hence one part of one insert, so one row stored means all of them are."""
    event_id = call.positioned.record["event_id"]
    return any((event_id, name, version) in stored for name, version in group.versions.items())


def run_page(
    groups: Sequence[ReplayGroup], calls: Sequence[StoredCall], stored: set[tuple[str, str, str]], stats: "ReplayStats"
) -> list[list[Any]]:
    """Run every group on the page's calls it still needs; the rows not stored yet."""
    topics = {c.positioned.record["event_id"]: c.topic for c in calls}
    rows: list[list[Any]] = []
    for group in groups:
        batch = [c.positioned for c in calls if group.stateful or not _done(group, c, stored)]
        if not batch:
            continue
        out = group.runner.run(batch)
        stats.ran[group.name] = stats.ran.get(group.name, 0) + len(batch)
        stats.errors += len(out.errors)
        for row in out.rows:
            if (row[0], row[1], row[2]) not in stored:
                row[_TOPIC] = topics[row[0]]
                rows.append(row)
    return rows


@dataclass
class ReplayStats:
    """What a replay did."""

    replay_id: str
    versions: dict[str, str]
    calls: int = 0  # calls read from the range
    ran: dict[str, int] = field(default_factory=dict)  # group -> calls its detectors ran on (the rest were done)
    rows_written: int = 0
    rows_rejected: int = 0  # refused by ClickHouse for their data (logged)
    errors: int = 0  # detector failures on single events (logged)
    elapsed_s: float = 0.0

    @property
    def calls_per_s(self) -> float:
        """Calls read per second of the whole replay (queries, detectors and inserts)."""
        return self.calls / self.elapsed_s if self.elapsed_s > 0 else 0.0


def replay(
    client: Any,
    groups: Sequence[ReplayGroup],
    since_ms: int,
    until_ms: int,
    page_size: int = 256,
    on_page: Callable[[int], Any] | None = None,
) -> ReplayStats:
    """Replay ``groups`` on the calls of ``[since, until)`` into ``detection_replays``.

    ``on_page(n)`` is called after each page of ``n`` calls is stored (progress; raising there
    stops the replay like a crash would: running it again resumes).
    """
    if since_ms >= until_ms:
        raise ValueError("since must be before until")
    started = time.perf_counter()
    stats = ReplayStats(replay_id(since_ms, until_ms, groups), {n: v for g in groups for n, v in g.versions.items()})
    for group in groups:
        group.restart()
    writer = ReplayWriter(client)
    sink = ClickHouseSink(client, REPLAY_TABLE, REPLAY_COLUMNS, max_retries=5, writer=writer)
    for calls in iter_pages(client, since_ms, until_ms, page_size):
        first, last = calls[0].key[0], calls[-1].key[0]
        stored = stored_keys(client, [c.positioned.record["event_id"] for c in calls], first, last)
        for row in run_page(groups, calls, stored, stats):
            sink.add([*row, stats.replay_id])
        sink.flush()
        stats.rows_rejected += len(sink.rejected)
        stats.calls += len(calls)
        if on_page is not None:
            on_page(len(calls))
    stats.rows_written = writer.inserted
    stats.elapsed_s = time.perf_counter() - started
    return stats


def replayed_counts(client: Any, since_ms: int, until_ms: int) -> list[tuple[str, str, int]]:
    """``(detector, detector_version, calls)`` already in ``detection_replays`` for the range (none
    when the table is not created yet)."""
    if not client.command(f"EXISTS TABLE {REPLAY_TABLE}"):
        return []
    rows = client.query(
        f"SELECT detector, detector_version, uniqExact(event_id) FROM {REPLAY_TABLE} WHERE {_RANGE} "
        "GROUP BY detector, detector_version ORDER BY detector, detector_version",
        parameters={"lo": since_ms, "hi": until_ms},
    ).result_rows
    return [(d, v, int(n)) for d, v, n in rows]
