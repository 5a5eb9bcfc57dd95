"""Writes to the embedded engine: agents share a table's sink, concurrent writes are
group-committed, and a restarted worker drops only the rows it already stored (per detector)."""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from streams.pipeline.detection import DETECTION_COLUMNS
from streams.worker.services import Services
from streams.storage.sink import ClickHouseSink

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)


def detection_row(detector: str, topic: str, offset: int, partition: int = 0) -> list[Any]:
    # event ids are unique per event (here per topic, partition and offset): the same id at the same time
    # is a producer duplicate, which the sink drops
    return [f"{topic}-{partition}-e{offset}", detector, "1", 0.5, 0, 0.5, "benign", "{}", NOW, "app", "prod", "m", "v1",
            topic, partition, offset]


def stored(services: Services, topic: str) -> list[tuple[str, int, int]]:
    """(detector, offset, copies) for every stored row of ``topic``."""
    return [
        (d, int(o), int(n))
        for d, o, n in services.client.query(
            "SELECT detector, kafka_offset, count() FROM detections WHERE kafka_topic = {t:String} "
            "GROUP BY detector, kafka_offset ORDER BY detector, kafka_offset",
            parameters={"t": topic},
        ).result_rows
    ]


def test_agents_writing_one_table_share_its_sink(services: Services) -> None:
    a = services.sink("detections", DETECTION_COLUMNS, replay_key=("detector",))
    b = services.sink("detections", DETECTION_COLUMNS, replay_key=("detector",))
    assert a is b
    with pytest.raises(ValueError, match="already has a sink"):
        services.sink("detections", DETECTION_COLUMNS, replay_key=None)


def test_concurrent_writes_are_group_committed_and_stored_once(services: Services) -> None:
    topic = "gc.concurrent"
    sink = services.sink("detections", DETECTION_COLUMNS, replay_key=("detector",))
    before = sink.inserts
    seen_after_write: list[bool] = []

    async def agent(detector: str, check: bool) -> None:
        for batch in range(10):
            rows = [detection_row(detector, topic, batch * 5 + i) for i in range(5)]
            await services.write(sink, rows)
            if not check:
                continue
            # When write returns, the rows are queryable: the agent may ack their offsets.
            count = await services.db(
                lambda: services.client.query(
                    "SELECT count() FROM detections WHERE kafka_topic = {t:String} AND detector = {d:String} "
                    "AND kafka_offset BETWEEN {lo:UInt64} AND {hi:UInt64}",
                    parameters={"t": topic, "d": detector, "lo": batch * 5, "hi": batch * 5 + 4},
                ).result_rows[0][0]
            )
            seen_after_write.append(count == 5)

    async def three_agents(check: bool) -> None:
        await asyncio.wait_for(asyncio.gather(*(agent(d, check) for d in ("injection", "grounding", "drift"))), 60)

    asyncio.run(three_agents(check=False))
    made = sink.inserts - before
    assert made <= 10, f"30 concurrent writes took {made} inserts; expected them grouped (<= 10)"
    rows = stored(services, topic)
    assert len(rows) == 3 * 50 and all(n == 1 for _, _, n in rows)

    topic = "gc.queryable"  # each agent queries its rows as soon as its write returns
    asyncio.run(three_agents(check=True))
    assert len(seen_after_write) == 30 and all(seen_after_write)
    assert len(stored(services, topic)) == 150


def test_restarted_sink_drops_only_rows_already_stored_for_that_detector(services: Services) -> None:
    topic = "gc.replay"

    def flush(sink: ClickHouseSink, rows: list[list[Any]]) -> int:
        for row in rows:
            sink.add(row)
        return sink.flush()

    first = ClickHouseSink(services.client, "detections", DETECTION_COLUMNS, replay_key=("detector",))
    assert flush(first, [detection_row("injection", topic, o) for o in range(10)]) == 10
    # A new worker (fresh guard) replays injection 5..14 and checks grounding for 0..9 for the
    # first time: the grounding rows sit below injection's high-water mark but are new.
    second = ClickHouseSink(services.client, "detections", DETECTION_COLUMNS, replay_key=("detector",))
    replay = [detection_row("injection", topic, o) for o in range(5, 15)]
    fresh = [detection_row("grounding", topic, o) for o in range(10)]
    assert flush(second, replay + fresh) == 5 + 10
    rows = stored(services, topic)
    assert [(d, o) for d, o, _ in rows] == [("grounding", o) for o in range(10)] + [("injection", o) for o in range(15)]
    assert all(n == 1 for _, _, n in rows)


def test_replay_guard_tells_partitions_apart(services: Services) -> None:
    """The same offsets in another partition are other messages: a guard that ignored the
    partition would drop partition 1's first rows because partition 0 had stored those offsets."""
    topic = "gc.partitions"
    first = ClickHouseSink(services.client, "detections", DETECTION_COLUMNS, replay_key=("detector",))
    for o in range(10):
        first.add(detection_row("injection", topic, o, partition=0))
    assert first.flush() == 10
    second = ClickHouseSink(services.client, "detections", DETECTION_COLUMNS, replay_key=("detector",))
    for o in range(10):
        second.add(detection_row("injection", topic, 100 + o, partition=1))  # high-water mark first
    assert second.flush() == 10
    for o in range(10):
        second.add(detection_row("injection", topic, o, partition=1))
    assert second.flush() == 10
