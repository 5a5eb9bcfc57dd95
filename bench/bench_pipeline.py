"""End-to-end benchmark: the worker with every detector on vs the detectors alone, same events.

    .venv/bin/python bench/bench_pipeline.py [--warmup 1000] [--events 2000] [--latency-seconds 60]

Every phase first sees the same ``--warmup`` events and is measured on the calls that follow in
the same generated stream (one seed = one knowledge base, as in one deployment): a fresh worker
has an empty embedding cache, and RAG passages recur (after ~1,000 generated calls 97-99% of
passages have been seen, while ~75% of prompts and answers stay new), so per-event cost falls
as the cache fills. Measuring the maximum on a warm cache and the latency on a cold one (or the
reverse) would compare different workloads.

1. Pure: decode the events and run the three detector groups (injection, grounding, drift)
   in-process, in the worker's batch size: events/s over ``--events`` after the warm-up. It
   runs twice, before and after phase 2, and the baseline is the mean of the two: this
   machine's speed drifts by 5-10% within minutes, and bracketing cancels a steady drift.
2. Pipeline: ``llmwatch worker`` (ingest + all detector agents, one consumer group) processes
   the warm-up; then the same events are written to the topic at once, and the rate is those
   events over the time from the write to the commit of the last one: events/s. Ratio = 2 / 1.
3. Latency: a fresh worker processes the warm-up events, then calls are produced at half the
   pipeline's maximum rate for ``--latency-seconds``; produce -> detection queryable =
   ``detections.detected_at`` (set by ClickHouse when the insert lands) - event timestamp.
Run once per settings variant (sampling, cascade, batch size).

The broker shares the 2 cores with the worker, so it runs as llmwatch starts a local broker
(C1 JIT, serial GC: ``DEFAULT_JVM_OPTS``). With the full JIT, C2 compilation went on taking
~0.04 cores minutes after start, and the broker cost 2.0-2.4 ms of CPU per event against
1.0-1.1 ms with C1; its request handling cost the same (~0.5 ms per event) with either.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaProducer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._machine import machine  # noqa: E402
from streams.storage.clickhouse import connect  # noqa: E402
from streams.pipeline.codec import EventCodec  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.pipeline.detection import Positioned  # noqa: E402
from streams.devtools.generator import Generator  # noqa: E402
from streams.devtools.kafka_local import LocalKafka, create_topics, free_port  # noqa: E402
from streams.pipeline.redaction import Redactor  # noqa: E402
from streams.pipeline.runners import drift_runner, grounding_runner, injection_runner  # noqa: E402
from streams.devtools.supervisor import WorkerProcess  # noqa: E402
from streams.kafka.topics import topic_partitions  # noqa: E402

console = Console()
VARIANTS = {
    "all detectors, every call, cascade on, batch 256": {},
    "sampled: grounding 25%, drift 50%": {"sample_grounding": 0.25, "sample_drift": 0.5},
    "cascade off (embedding layers on every call)": {"cascade": 0},
}


def messages(n: int, seed: int, now_ms: int | None = None, drift_after: int | None = None) -> list:
    gen = Generator(seed=seed, rate=1e9, drift_after=n // 2 if drift_after is None else drift_after)
    return [m for m in gen.messages(n, malformed_ratio=0.0, clock_ms=(lambda: now_ms) if now_ms else None)]


def pure_throughput(settings: Settings, warmup: list, msgs: list) -> float:
    from detectors.embeddings import default_embedder
    from detectors.injection.heuristics import clear_scan_cache

    # Start as cold as a new worker process: a fresh embedder (no cached vectors) and no cached
    # heuristic scans. The scan cache outlives the runners; left warm, a second run here was
    # 8-15% faster than the first on the same events.
    default_embedder.cache_clear()
    clear_scan_cache()
    codec = EventCodec()
    redactor = Redactor.from_names(settings.redact)
    runners = [injection_runner(settings, redactor), grounding_runner(settings, redactor), drift_runner(settings, redactor)]
    size = settings.detect_batch_size

    def run_all(batch: list) -> None:
        for runner in runners:
            for i in range(0, len(batch), size):
                runner.run(batch[i : i + size])

    run_all([Positioned(codec.decode(m.value).record, 0, i) for i, m in enumerate(warmup)])
    batch = [Positioned(codec.decode(m.value).record, 0, len(warmup) + i) for i, m in enumerate(msgs)]
    started = time.perf_counter()
    run_all(batch)
    return len(batch) / (time.perf_counter() - started)


async def fill(bootstrap: str, topic: str, msgs: list) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_request_size=4 << 20)
    await producer.start()
    try:
        for m in msgs:
            await producer.send(topic, m.value, key=m.key)
        await producer.flush()
    finally:
        await producer.stop()


async def produce_steady(bootstrap: str, topic: str, rate: float, seconds: float, traffic: list) -> int:
    """Send ``rate * seconds`` of ``traffic`` at ``rate``, each stamped with its send time."""
    msgs = traffic[: int(rate * seconds)]
    if len(msgs) < int(rate * seconds):
        raise ValueError(f"{len(traffic)} messages cannot feed {rate:.0f}/s for {seconds:.0f} s")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    codec = EventCodec()
    t0 = time.monotonic()
    try:
        for i, m in enumerate(msgs):
            ahead = i / rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
            record = dict(m.event)
            record["timestamp_ms"] = int(time.time() * 1000)
            await producer.send(topic, codec.encode_confluent(record), key=m.key)
        await producer.flush()
    finally:
        await producer.stop()
    return len(msgs)


def pipeline_throughput(settings: Settings, warmup: list, msgs: list) -> float:
    """Events/s of a warmed-up worker on a burst of ``msgs`` (write -> last commit)."""
    asyncio.run(fill(settings.kafka_bootstrap, settings.calls_topic, warmup))
    worker = WorkerProcess(settings).start()
    try:
        worker.wait_caught_up(timeout=900)
        started = time.perf_counter()
        asyncio.run(fill(settings.kafka_bootstrap, settings.calls_topic, msgs))
        # Poll often: the end is the first look at a zero lag (commits land every second).
        worker.wait_caught_up(timeout=900, poll_s=0.1)
        return len(msgs) / (time.perf_counter() - started)
    finally:
        worker.stop()


def latency(settings: Settings, warmup: list, traffic: list, rate: float, seconds: float) -> tuple[float, float, float, int]:
    """(p50, p99, max, n) in ms of produce -> detection queryable for ``traffic`` produced at
    ``rate`` after the worker has processed ``warmup``."""
    asyncio.run(fill(settings.kafka_bootstrap, settings.calls_topic, warmup))
    worker = WorkerProcess(settings).start()
    try:
        worker.wait_caught_up(timeout=900)
        started_ms = int(time.time() * 1000)
        asyncio.run(produce_steady(settings.kafka_bootstrap, settings.calls_topic, rate, seconds, traffic))
        worker.wait_caught_up(timeout=900)
    finally:
        worker.stop()
    client = connect(settings.dsn)
    try:
        return client.query(
            "SELECT quantileExact(0.5)(d), quantileExact(0.99)(d), max(d), count() FROM ("
            " SELECT event_id, any(timestamp) AS t, dateDiff('millisecond', t, max(detected_at)) AS d"
            " FROM detections WHERE detector = 'injection' GROUP BY event_id)"
            " WHERE toUnixTimestamp64Milli(t) >= {started:Int64}",
            parameters={"started": started_ms},
        ).result_rows[0]
    finally:
        client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, default=1000, help="events every phase processes before it is measured")
    ap.add_argument("--events", type=int, default=2000, help="events the throughput phases are measured on")
    ap.add_argument("--latency-seconds", type=float, default=60.0, help="length of the steady-rate latency run")
    ap.add_argument("--variants", type=int, default=len(VARIANTS), help="run only the first N settings variants")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pipeline.md")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="llmwatch-pipeline-") as tmp:
        home = Path(tmp)
        kafka = LocalKafka(home / "kafka", port=free_port())
        with console.status("starting Kafka…"):
            kafka.start()
        try:
            for i, (name, overrides) in enumerate(list(VARIANTS.items())[: args.variants]):
                base = Settings(home=str(home / f"v{i}"), kafka_bootstrap=kafka.bootstrap, calls_topic=f"bench{i}.calls",
                                dead_letter_topic=f"bench{i}.dlq", results_topic=f"bench{i}.results",
                                consumer_group=f"bench{i}", drift_report_interval_s=10.0)
                settings = dataclasses.replace(base, **overrides)
                create_topics(kafka.bootstrap, topic_partitions(settings))
                # One stream (one seed: one knowledge base, as one deployment): warm-up, the
                # measured events, then the latency run's traffic (enough for 80 events/s).
                stream = messages(args.warmup + args.events + int(80 * args.latency_seconds), seed=100 + i,
                                  drift_after=args.warmup + args.events // 2)
                warmup, msgs = stream[: args.warmup], stream[args.warmup : args.warmup + args.events]
                traffic = stream[args.warmup + args.events :]
                with console.status(f"[{name}] detectors alone on {len(msgs)} events (after {len(warmup)})…"):
                    pure_before = pure_throughput(settings, warmup, msgs)
                with console.status(f"[{name}] worker end to end…"):
                    e2e = pipeline_throughput(settings, warmup, msgs)
                with console.status(f"[{name}] detectors alone again…"):
                    pure_after = pure_throughput(settings, warmup, msgs)
                pure = (pure_before + pure_after) / 2
                lat_settings = dataclasses.replace(settings, calls_topic=f"bench{i}.lat", consumer_group=f"bench{i}-lat",
                                                   home=str(home / f"v{i}-lat"))
                create_topics(kafka.bootstrap, topic_partitions(lat_settings))
                rate = e2e / 2
                with console.status(f"[{name}] latency at {rate:.0f} events/s…"):
                    p50, p99, worst, n = latency(lat_settings, warmup, traffic, rate, args.latency_seconds)
                rows.append((name, f"{pure:.1f} ({pure_before:.1f} / {pure_after:.1f})", f"{e2e:.1f}", f"{e2e / pure:.2f}", f"{rate:.0f}", f"{p50:.0f}", f"{p99:.0f}",
                             f"{worst:.0f}", str(n)))
                console.print(rows[-1])
        finally:
            kafka.stop()
    head = ("settings", "detectors alone (events/s: mean (before / after))", "pipeline (events/s)", "ratio", "latency rate (events/s)",
            "p50 produce→detection (ms)", "p99 (ms)", "max (ms)", "events")
    table = Table(title="Pipeline with all detectors")
    for h in head:
        table.add_column(h)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    md = [f"Machine: {machine()}", f"Per variant: {args.warmup} warm-up events, then {args.events} measured events;"
          f" latency run {args.latency_seconds:.0f} s at half the pipeline's rate.", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(md) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
