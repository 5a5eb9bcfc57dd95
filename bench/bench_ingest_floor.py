"""Where ingest's CPU goes, stage by stage, beside the bare consumer in the same run.

    .venv/bin/python bench/bench_ingest_floor.py [--events 40000] [--batch-size N] [--repeats 3]

`bench_ingest.py` measures the worker end to end; this one explains its ceiling. One real
local broker serves a pre-filled topic to the bare aiokafka + fastavro consumer (its events/s
give T_bare, its whole cost per event). Then, in this process and on one thread, the same
events go through each stage the worker adds, timed with the CPU clock:

* decode only: what the bare consumer does to each message (fastavro / json.loads);
* `IngestProcessor.process`: decode, validation, redaction, row building;
* the insert into the embedded engine at the worker's batch size, split into clickhouse-connect's
  serialisation (Python) and the engine's own work (chDB's query call);
* the duplicate guard's per-batch lookup.

The Kafka client's own cost per event is K = T_bare - decode only (the bare consumer does nothing
else). A worker that does all the stages pays K + process + insert + guard per event, so on one
core its ratio to the bare consumer is at most T_bare / that sum; with its work spread perfectly
over both cores and nothing left for the broker, at most twice that. The floor row drops
validation, redaction and the guard altogether: what storing through the embedded engine costs
by itself. Results go to
``bench/results/ingest_floor.md``.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402

from bench._machine import machine  # noqa: E402
from bench.bench_ingest import bare_decode, baseline, fill_topic  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.devtools.generator import Generator  # noqa: E402
from streams.devtools.kafka_local import LocalKafka, create_topics, free_port  # noqa: E402
from streams.pipeline.codec import EventCodec  # noqa: E402
from streams.pipeline.ingest import IngestProcessor, RawMessage  # noqa: E402
from streams.pipeline.redaction import Redactor  # noqa: E402
from streams.pipeline.registry import LocalSchemaRegistry  # noqa: E402
from streams.storage.clickhouse import connect, migrate  # noqa: E402
from streams.storage.duplicate_guard import DuplicateGuard  # noqa: E402
from streams.storage.rows import LLM_CALL_COLUMNS  # noqa: E402
from streams.storage.sink import ClickHouseSink  # noqa: E402

console = Console()


def messages(n: int) -> list[RawMessage]:
    """The events `bench_ingest.py` fills its topic with (same generator, seed and mix)."""
    now = int(time.time() * 1000)
    gen = Generator(seed=1, rate=1e9)
    return [RawMessage(m.key, m.value, 0, i)
            for i, m in enumerate(gen.messages(n, malformed_ratio=0.0, json_ratio=0.2, clock_ms=lambda: now))]


def cpu_us_per(n: int, work) -> tuple[float, object]:
    """CPU µs per item of ``work()`` over ``n`` items, and what it returned."""
    t = time.process_time()
    result = work()
    return (time.process_time() - t) / n * 1e6, result


def decode_all(msgs: list[RawMessage]) -> None:
    """Exactly the bare consumer's per-message work (bench_ingest.baseline), without Kafka."""
    registry, writers = LocalSchemaRegistry(), {}
    for m in msgs:
        bare_decode(m.value, registry, writers)


def stages(msgs: list[RawMessage], batch_size: int, redact: str) -> dict[str, float]:
    """CPU µs per event of each stage, on this thread."""
    n = len(msgs)
    proc = IngestProcessor(EventCodec(), "llm.calls", Redactor.from_names(redact))
    proc.process(msgs[:200])  # warm the writer-schema plans
    out = {"decode only": cpu_us_per(n, lambda: decode_all(msgs))[0]}
    out["process"], batch = cpu_us_per(n, lambda: proc.process(msgs))
    rows = batch.rows
    with tempfile.TemporaryDirectory(prefix="llmwatch-floor-") as tmp:
        client = connect(f"chdb://{tmp}/ch")
        migrate(client)
        sink = ClickHouseSink(client, "llm_calls", LLM_CALL_COLUMNS)
        engine = 0.0
        # the engine's part alone: the backend's query call (the Native block is serialised lazily
        # before it, while the backend writes it to the file the engine reads)
        real_query = client._backend._run  # noqa: SLF001

        def timed_insert(*a, **kw):
            nonlocal engine
            t = time.process_time()
            try:
                return real_query(*a, **kw)
            finally:
                engine += time.process_time() - t

        client._backend._run = timed_insert  # noqa: SLF001
        batches = [rows[i:i + batch_size] for i in range(0, n, batch_size)]
        insert, _ = cpu_us_per(n, lambda: [sink.write(b) for b in batches])
        out["insert: engine (chDB)"] = engine / n * 1e6
        out["insert: serialisation (clickhouse-connect)"] = insert - out["insert: engine (chDB)"]
        client._backend._run = real_query  # noqa: SLF001
        guard = DuplicateGuard(client, "llm_calls", sink.column_names)
        out["duplicate guard"], _ = cpu_us_per(n, lambda: [guard.filter(b) for b in batches])
        client.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--repeats", type=int, default=3, help="bare-consumer runs and stage measurements, medians kept")
    ap.add_argument("--batch-size", type=int, default=Settings().batch_size)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ingest_floor.md")
    args = ap.parse_args()
    redact = Settings().redact
    with tempfile.TemporaryDirectory(prefix="llmwatch-floor-") as tmp:
        kafka = LocalKafka(Path(tmp) / "kafka", port=free_port(), jvm_opts=())
        with console.status("starting Kafka…"):
            kafka.start()
        try:
            rates = []
            for i in range(args.repeats):
                topic = f"floor.calls{i}"
                create_topics(kafka.bootstrap, {topic: 4})
                with console.status(f"[{i + 1}/{args.repeats}] filling and reading {args.events:,} events…"):
                    asyncio.run(fill_topic(kafka.bootstrap, topic, args.events))
                    rates.append(asyncio.run(baseline(kafka.bootstrap, topic, args.events)))
        finally:
            kafka.stop()
    msgs = messages(args.events)
    runs = []
    for i in range(args.repeats):
        with console.status(f"[{i + 1}/{args.repeats}] timing the worker's stages…"):
            runs.append(stages(msgs, args.batch_size, redact))
    report(args, rates, runs)


def report(args: argparse.Namespace, rates: list[float], runs: list[dict[str, float]]) -> None:
    med = statistics.median
    cost = {k: med(r[k] for r in runs) for k in runs[0]}
    t_bare = 1e6 / med(rates)
    kafka = max(0.0, t_bare - cost["decode only"])
    worker = kafka + sum(v for k, v in cost.items() if k != "decode only")
    one_core, two_cores = t_bare / worker, 2 * t_bare / worker
    # a worker that only decoded as the bare consumer does and inserted: no validation, redaction or guard
    bare_store = t_bare + cost["insert: serialisation (clickhouse-connect)"] + cost["insert: engine (chDB)"]
    rows = [
        ("bare consumer: events/s, per run", " / ".join(f"{r:,.0f}" for r in rates)),
        ("bare consumer: µs per event, all of it (T_bare)", f"{t_bare:.1f}"),
        ("of which decode only (fastavro / json.loads)", f"{cost['decode only']:.1f}"),
        ("of which the Kafka client (K = T_bare - decode)", f"{kafka:.1f}"),
        ("worker: IngestProcessor.process (decode, validate, redact, row)", f"{cost['process']:.1f}"),
        (f"worker: insert, clickhouse-connect serialisation ({args.batch_size:,} rows per insert)",
         f"{cost['insert: serialisation (clickhouse-connect)']:.1f}"),
        ("worker: insert, the engine's own work (chDB, 3 rollup views)", f"{cost['insert: engine (chDB)']:.1f}"),
        ("worker: duplicate guard lookup", f"{cost['duplicate guard']:.1f}"),
        ("worker: µs per event, K + every stage", f"{worker:.1f}"),
        ("ceiling of the ratio, worker on one core", f"{one_core:.2f}"),
        ("ceiling of the ratio, worker spread perfectly over 2 cores, broker free", f"{two_cores:.2f}"),
        ("floor: µs per event to decode as the bare consumer and insert, nothing else", f"{bare_store:.1f}"),
        ("ceiling of the ratio for that floor, one core / 2 cores", f"{t_bare / bare_store:.2f} / {2 * t_bare / bare_store:.2f}"),
    ]
    for a, b in rows:
        console.print(f"{a}: [bold]{b}[/bold]")
    md = [f"Machine: {machine()}",
          f"Events: {args.events:,} per run (80% Avro, 20% JSON, the bench_ingest generator), {args.repeats} runs, medians; "
          "stage costs are CPU time on one thread in one process; the bare consumer read a real local broker in the same run.",
          "", "| measure | value |", "|---|---|"]
    md += [f"| {a} | {b} |" for a, b in rows]
    md += ["", "Stage costs of each run (µs per event): " + "; ".join(
        f"run {i + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()) for i, r in enumerate(runs))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(md) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
