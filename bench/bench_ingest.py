"""Ingest benchmark: llmwatch worker vs a bare aiokafka + fastavro consumer on the same topic.

    .venv/bin/python bench/bench_ingest.py [--events 100000] [--repeats 3] [--latency-rate 0] [--latency-seconds 30]
                                           [--batch-size N]

Both read the same pre-filled topic on a real local Kafka broker. The worker's throughput is
measured from its first commit to its last (commits happen only after ClickHouse accepted a
batch); the baseline decodes every message and stores nothing. Latency: events produced at a
steady rate; produce -> queryable = ``ingested_at`` (set by ClickHouse when the insert lands)
minus the event timestamp (set when the producer sends it).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import json
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastavro  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._machine import machine  # noqa: E402
from bench._worker_rate import Rate, worker_rate  # noqa: E402
from streams.storage.clickhouse import connect  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.devtools.generator import Generator  # noqa: E402
from streams.devtools.kafka_local import LocalKafka, create_topics, free_port  # noqa: E402
from streams.pipeline.registry import LocalSchemaRegistry  # noqa: E402
from streams.devtools.supervisor import WorkerProcess  # noqa: E402

console = Console()
logging.getLogger("aiokafka").setLevel(logging.ERROR)


async def fill_topic(bootstrap: str, topic: str, n: int) -> None:
    gen = Generator(seed=1, rate=1e9)
    now = int(time.time() * 1000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, max_request_size=4 << 20)
    await producer.start()
    try:
        for msg in gen.messages(n, malformed_ratio=0.0, json_ratio=0.2, clock_ms=lambda: now):
            await producer.send(topic, msg.value, key=msg.key)
        await producer.flush()
    finally:
        await producer.stop()


def bare_decode(raw: bytes, registry: LocalSchemaRegistry, writers: dict) -> None:
    """The bare consumer's whole work on one message: fastavro with the writer schema, or json.loads."""
    if raw[0] == 0:
        _, sid = struct.unpack_from(">bI", raw)
        if sid not in writers:
            writers[sid] = fastavro.parse_schema(registry.get(sid))
        buf = io.BytesIO(raw)
        buf.seek(5)
        fastavro.schemaless_reader(buf, writers[sid], None)
    else:
        json.loads(raw)


async def baseline(bootstrap: str, topic: str, n: int) -> float:
    """Bare aiokafka consumer + fastavro (JSON via json.loads): events/s."""
    registry = LocalSchemaRegistry()
    writers = {}
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    seen = 0
    t0 = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                if t0 is None:
                    t0 = time.perf_counter()
                for r in records:
                    bare_decode(r.value, registry, writers)
                    seen += 1
        return seen / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def produce_steady(bootstrap: str, topic: str, rate: float, seconds: float) -> int:
    gen = Generator(seed=2, rate=rate)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    sent = 0
    t0 = time.monotonic()
    try:
        for msg in gen.messages(int(rate * seconds), malformed_ratio=0.0, clock_ms=lambda: int(time.time() * 1000)):
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
            await producer.send(topic, msg.value, key=msg.key)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def latency(settings: Settings, rate: float, seconds: float) -> dict[str, float]:
    worker = WorkerProcess(settings).start()
    try:
        time.sleep(8)  # join the group before traffic starts, so start-up is not counted as latency
        sent = asyncio.run(produce_steady(settings.kafka_bootstrap, settings.calls_topic, rate, seconds))
        worker.wait_caught_up(timeout=120)
    finally:
        worker.stop()
    client = connect(settings.dsn)
    try:
        p50, p99, n = client.query(
            "SELECT quantileExact(0.5)(d), quantileExact(0.99)(d), count() FROM "
            "(SELECT dateDiff('millisecond', timestamp, ingested_at) AS d FROM llm_calls FINAL)"
        ).result_rows[0]
    finally:
        client.close()
    return {"sent": sent, "stored": n, "p50_ms": p50, "p99_ms": p99}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3, help="baseline/worker pairs, alternated (the machine is noisy)")
    ap.add_argument("--latency-rate", type=float, default=0.0, help="events/s; 0 = half the worker's median rate")
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--batch-size", type=int, default=Settings().batch_size, help="LLMWATCH_BATCH_SIZE of the worker")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ingest.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmwatch-bench-") as tmp:
        home = Path(tmp)
        kafka = LocalKafka(home / "kafka", port=free_port(), jvm_opts=())  # full JIT: throughput, not start-up
        with console.status("starting Kafka…"):
            kafka.start()
        try:
            pairs = throughput_pairs(kafka.bootstrap, home, args.events, args.repeats, args.batch_size)
            rate = args.latency_rate or 0.5 * statistics.median(r.events_per_s for _, r in pairs)
            lat_settings = Settings(home=str(home / "lat"), kafka_bootstrap=kafka.bootstrap, calls_topic="bench.lat",
                                    dead_letter_topic="bench.lat.dlq", consumer_group="bench-lat",
                                    detectors="", results_topic="", batch_size=args.batch_size)
            create_topics(kafka.bootstrap, {lat_settings.calls_topic: 4, lat_settings.dead_letter_topic: 1})
            with console.status(f"latency at {rate:.0f} events/s for {args.latency_seconds:.0f}s…"):
                lat = latency(lat_settings, rate, args.latency_seconds)
        finally:
            kafka.stop()
    report(args, pairs, rate, lat)


def throughput_pairs(bootstrap: str, home: Path, events: int, repeats: int, batch_size: int) -> list[tuple[float, Rate]]:
    """(baseline events/s, worker rate) pairs, each pair on a topic of its own, filled once."""
    pairs = []
    for i in range(repeats):
        thr = Settings(home=str(home / f"thr{i}"), kafka_bootstrap=bootstrap, calls_topic=f"bench.calls{i}",
                       dead_letter_topic=f"bench.dlq{i}", consumer_group=f"bench-worker{i}", detectors="", results_topic="",
                       batch_size=batch_size)
        create_topics(bootstrap, {thr.calls_topic: thr.topic_partitions, thr.dead_letter_topic: 1})
        with console.status(f"[{i + 1}/{repeats}] filling the topic with {events:,} events…"):
            asyncio.run(fill_topic(bootstrap, thr.calls_topic, events))
        with console.status(f"[{i + 1}/{repeats}] baseline: aiokafka + fastavro…"):
            base = asyncio.run(baseline(bootstrap, thr.calls_topic, events))
        with console.status(f"[{i + 1}/{repeats}] llmwatch ingest: decode + validate + redact + insert + commit…"):
            ours = worker_rate(thr, events)
        console.print(f"  pair {i + 1}: baseline {base:,.0f}/s, worker {ours.events_per_s:,.0f}/s, "
                      f"ratio {ours.events_per_s / base:.2f}")
        pairs.append((base, ours))
    return pairs


def report(args: argparse.Namespace, pairs: list[tuple[float, Rate]], rate: float, lat: dict[str, float]) -> None:
    ratios = [r.events_per_s / b for b, r in pairs]
    med = statistics.median
    rows = [
        ("baseline: aiokafka + fastavro decode (events/s)", " / ".join(f"{b:,.0f}" for b, _ in pairs)),
        ("llmwatch ingest: decode, validate, redact, ClickHouse, commit (events/s)",
         " / ".join(f"{r.events_per_s:,.0f}" for _, r in pairs)),
        ("ratio worker / baseline, per pair", " / ".join(f"{x:.2f}" for x in ratios)),
        ("ratio, median", f"{med(ratios):.2f}"),
        ("worker CPU per 1,000 events (ms), median", f"{med(r.cpu_ms_per_1000 for _, r in pairs):.0f}"),
        (f"produce→queryable p50 at {rate:.0f}/s (ms)", f"{lat['p50_ms']:.0f}"),
        (f"produce→queryable p99 at {rate:.0f}/s (ms)", f"{lat['p99_ms']:.0f}"),
        ("latency run: sent / stored", f"{lat['sent']:,} / {lat['stored']:,}"),
    ]
    table = Table(title="Ingest")
    for col in ("measure", "value"):
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    md = [f"Machine: {machine()}", f"Events: {args.events:,} per run (80% Avro v1/v2, 20% JSON), {args.repeats} alternated "
          f"baseline/worker pairs, batch size {args.batch_size}, 4 partitions, embedded ClickHouse (chDB); latency at half the "
          "worker's median rate.", "", "| measure | value |", "|---|---|"]
    md += [f"| {a} | {b} |" for a, b in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(md) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
