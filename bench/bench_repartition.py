"""Drift-key routing benchmark: producer keying by app vs a Faust ``group_by`` repartition.

    .venv/bin/python bench/bench_repartition.py [--events 30000] [--repeats 3] [--partitions 4]

Drift windows are keyed by (app, model, prompt version). Two ways to make every key's events
reach one worker:

* direct: the producer keys the calls topic by ``service_name`` (what the llmwatch producer does),
  so all keys of an app are in one partition; the agent decodes each event and takes its key;
* repartition: the agent re-keys every event by the drift key with ``stream.group_by`` (Faust
  forwards the original bytes through an internal ``…-repartition`` topic); the second stage
  decodes again (the detector needs the record) and takes the key.

The drift detector itself is not run: this measures the routing cost only. Each pair reads one
freshly filled topic (real generated calls: 80% Avro v1/v2, 20% JSON, keyed by app), once per
mode, in alternating order, each in a worker subprocess of its own (own app id, own consumer
group) that times itself from the first event it processes to the last, and reports its CPU
seconds (``getrusage``, all threads) over the same interval. Extra broker bytes: the size on disk
of the repartition topic's log segments. Ordering: each worker writes the event ids of every drift
key in the order it processed them; they are compared with the partition order of the calls topic.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console()
MODES = ("direct", "repartition")
SEP = "\x1f"  # between the parts of a drift key in its byte form


def drift_key(record: dict) -> str:
    return f"{record['service_name']}{SEP}{record['request_model']}{SEP}{record['prompt_version']}"


# --------------------------------------------------------------------------- worker side

def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_worker(args: argparse.Namespace) -> None:
    """One Faust worker: route ``--events`` events, print a result line, exit."""
    import faust

    from streams.pipeline.codec import EventCodec

    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    codec = EventCodec()
    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        datadir=args.datadir,
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=args.partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        # The llmwatch worker's settings (streams/app.py) where they bear on throughput.
        broker_commit_interval=1.0,
        broker_commit_every=5000,
        producer_linger=0.01,
        broker_max_poll_records=5000,
        stream_buffer_maxsize=4096,
        stream_wait_empty=False,
        web_enabled=False,
        # Faust's default (1 MiB per partition, ~870 of these ~1.2 KB calls) caps either mode at
        # ~1,800 events/s here with the worker mostly idle, which would hide the routing cost.
        consumer_max_fetch_size=args.fetch_bytes,
    )
    calls = app.topic(args.topic, value_type=bytes, key_type=bytes, partitions=args.partitions)
    state = {"n": 0, "t0": None, "cpu0": None, "stage1": 0}
    order: dict[str, list[str]] = defaultdict(list)

    def start_clock() -> None:
        if state["t0"] is None:
            state["t0"], state["cpu0"] = time.perf_counter(), cpu_s()

    def route(record: dict) -> None:
        order[drift_key(record)].append(record["event_id"])
        state["n"] += 1
        if state["n"] >= args.events:
            finish()

    def finish() -> None:
        elapsed, cpu = time.perf_counter() - state["t0"], cpu_s() - state["cpu0"]
        # A file, not stdout: the Faust worker may take over the standard streams.
        Path(args.result_file).write_text(json.dumps({"events": state["n"], "seconds": elapsed, "cpu_s": cpu,
                                                      "stage1": state["stage1"], "order": order}))
        os._exit(0)  # every event was consumed by the last stage: nothing left to flush

    if args.worker == "direct":
        @app.agent(calls, name="route_direct")
        async def route_direct(stream: faust.StreamT) -> None:
            async for values in stream.take(1000, within=0.2):
                start_clock()
                for value in values:
                    route(codec.decode(value).record)
    else:
        def new_key(value: bytes) -> bytes:
            start_clock()
            state["stage1"] += 1
            return drift_key(codec.decode(value).record).encode()

        @app.agent(calls, name="route_repartition")
        async def route_repartition(stream: faust.StreamT) -> None:
            async for values in stream.group_by(new_key, name="driftkey").take(1000, within=0.2):
                for value in values:
                    route(codec.decode(value).record)  # the detector needs the record: decode again

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


# --------------------------------------------------------------------------- driver side

@dataclass(frozen=True)
class Run:
    mode: str
    pair: int
    events: int
    seconds: float
    cpu_s: float
    wall_s: float  # the whole subprocess, start-up included
    broker_cpu_s: float  # the broker, over the subprocess's life
    extra_bytes: int  # repartition topic on disk
    extra_messages: int
    extra_partitions: dict[int, int]
    order_violations: int  # drift keys whose events came in another order than their partition's
    keys: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_ms_per_1000(self) -> float:
        return 1e6 * self.cpu_s / self.events


def proc_cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def topic_disk(log_dir: Path, match: str) -> tuple[int, dict[int, Path]]:
    """Bytes of the ``.log`` segments of the topic(s) whose directory name contains ``match``."""
    total, dirs = 0, {}
    for d in log_dir.iterdir():
        if d.is_dir() and match in d.name:
            dirs[int(d.name.rsplit("-", 1)[1])] = d
            total += sum(f.stat().st_size for f in d.glob("*.log"))
    return total, dirs


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def partition_order(bootstrap: str, topic: str, n: int) -> tuple[dict[str, list[str]], dict[int, Counter]]:
    """Event ids of every drift key in partition order, and the drift keys of each partition."""
    from aiokafka import AIOKafkaConsumer

    from streams.pipeline.codec import EventCodec

    codec = EventCodec()
    by_key: dict[str, list[str]] = defaultdict(list)
    by_partition: dict[int, Counter] = defaultdict(Counter)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    seen = 0
    try:
        while seen < n:
            for tp, records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).items():
                for r in records:
                    record = codec.decode(r.value).record
                    by_key[drift_key(record)].append(record["event_id"])
                    by_partition[tp.partition][drift_key(record)] += 1
                    seen += 1
    finally:
        await consumer.stop()
    return by_key, by_partition


def run_mode(mode: str, pair: int, topic: str, bootstrap: str, kafka_pid: int, home: Path, log_dir: Path,
             args: argparse.Namespace, expected: dict[str, list[str]]) -> Run:
    app_id = f"bench-rp-{mode}-{pair}"
    result_file = home / f"{app_id}.result.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--bootstrap", bootstrap,
           "--topic", topic, "--app-id", app_id, "--events", str(args.events), "--partitions", str(args.partitions),
           "--fetch-bytes", str(args.fetch_bytes),
           "--datadir", str(home / app_id), "--result-file", str(result_file)]
    log = home / f"{app_id}.log"
    broker0, t0 = proc_cpu_s(kafka_pid), time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.run(cmd, stdout=err, stderr=subprocess.STDOUT, timeout=args.worker_timeout, check=False)
    wall, broker = time.perf_counter() - t0, proc_cpu_s(kafka_pid) - broker0
    if not result_file.exists():
        raise RuntimeError(f"{mode} worker exited {proc.returncode} without a result; tail of {log}:\n"
                           + "\n".join(log.read_text().splitlines()[-40:]))
    res = json.loads(result_file.read_text())
    extra_bytes, extra_msgs, extra_parts = 0, 0, {}
    if mode == "repartition":
        extra_bytes, dirs = topic_disk(log_dir, f"-{topic}-driftkey-repartition")
        if not dirs:
            raise RuntimeError(f"no repartition topic under {log_dir}: {sorted(p.name for p in log_dir.iterdir())}")
        name = next(iter(dirs.values())).name.rsplit("-", 1)[0]
        extra_parts = asyncio.run(end_offsets(bootstrap, name))
        extra_msgs = sum(extra_parts.values())
    got: dict[str, list[str]] = res["order"]
    violations = sum(1 for k, ids in expected.items() if got.get(k) != ids)
    return Run(mode, pair, res["events"], res["seconds"], res["cpu_s"], wall, broker, extra_bytes, extra_msgs,
               extra_parts, violations, len(expected))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--repeats", type=int, default=3, help="direct/repartition pairs, alternated (the machine is noisy)")
    ap.add_argument("--partitions", type=int, default=4, help="partitions of the calls and repartition topics")
    ap.add_argument("--fetch-bytes", type=int, default=8 << 20,
                    help="Faust consumer_max_fetch_size (per partition); Faust's default, which llmwatch uses, is 1 MiB")
    ap.add_argument("--worker-timeout", type=float, default=180.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "repartition.md")
    # worker-subprocess mode (internal)
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--app-id", help=argparse.SUPPRESS)
    ap.add_argument("--datadir", help=argparse.SUPPRESS)
    ap.add_argument("--result-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        sys.argv = sys.argv[:1]  # faust.Worker reads no options of ours
        run_worker(args)
        return

    from bench.bench_ingest import fill_topic
    from streams.devtools.kafka_local import LocalKafka, create_topics, free_port

    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    runs: list[Run] = []
    layout: dict[int, Counter] = {}
    calls_bytes: list[int] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llmwatch-bench-rp-") as tmp:
        home = Path(tmp)
        kafka = LocalKafka(home / "kafka", port=free_port(), jvm_opts=())  # full JIT: throughput, not start-up
        with console.status("starting Kafka…"):
            kafka.start()
        try:
            log_dir = kafka.data_dir / "logs"
            for i in range(args.repeats):
                topic = f"bench.rp.calls{i}"
                create_topics(kafka.bootstrap, {topic: args.partitions})
                with console.status(f"[{i + 1}/{args.repeats}] filling {topic} with {args.events:,} events keyed by app…"):
                    asyncio.run(fill_topic(kafka.bootstrap, topic, args.events))
                    expected, layout = asyncio.run(partition_order(kafka.bootstrap, topic, args.events))
                    calls_bytes.append(topic_disk(log_dir, f"{topic}-")[0])
                order = MODES if i % 2 == 0 else MODES[::-1]
                for mode in order:
                    with console.status(f"[{i + 1}/{args.repeats}] {mode}: Faust worker routing {args.events:,} events…"):
                        run = run_mode(mode, i, topic, kafka.bootstrap, kafka.pid, home, log_dir, args, expected)
                    runs.append(run)
                    console.print(f"  pair {i + 1} {mode:>11}: {run.events_per_s:,.0f} events/s, "
                                  f"{run.cpu_ms_per_1000:.0f} ms CPU / 1,000 events, extra {run.extra_bytes:,} B "
                                  f"({run.extra_messages:,} messages), order violations {run.order_violations}/{run.keys} keys, "
                                  f"subprocess {run.wall_s:.1f}s")
        finally:
            kafka.stop()
    report(args, runs, layout, calls_bytes, time.perf_counter() - started)


def report(args: argparse.Namespace, runs: list[Run], layout: dict[int, Counter], calls_bytes: list[int],
           total_s: float) -> None:
    from bench._machine import machine

    med = statistics.median
    by = {m: [r for r in runs if r.mode == m] for m in MODES}
    d, rp = by["direct"], by["repartition"]
    ratios = [b.events_per_s / a.events_per_s for a, b in zip(d, rp)]
    cpu_ratios = [b.cpu_ms_per_1000 / a.cpu_ms_per_1000 for a, b in zip(d, rp)]
    per = lambda rs, f: " / ".join(f(r) for r in rs)  # noqa: E731
    n = args.events
    busiest = lambda counts: max(counts.values()) / sum(counts.values())  # noqa: E731
    calls_parts = {p: sum(c.values()) for p, c in layout.items()}
    rp_parts = rp[-1].extra_partitions if rp else {}
    rows = [
        ("direct (producer keyed by app): events/s, per pair", per(d, lambda r: f"{r.events_per_s:,.0f}")),
        ("repartition (group_by drift key): events/s, per pair", per(rp, lambda r: f"{r.events_per_s:,.0f}")),
        ("throughput ratio repartition / direct, per pair", " / ".join(f"{x:.2f}" for x in ratios)),
        ("throughput ratio, median", f"{med(ratios):.2f}"),
        ("direct: worker CPU per 1,000 events (ms), per pair", per(d, lambda r: f"{r.cpu_ms_per_1000:.0f}")),
        ("repartition: worker CPU per 1,000 events (ms), per pair", per(rp, lambda r: f"{r.cpu_ms_per_1000:.0f}")),
        ("CPU ratio repartition / direct, median", f"{med(cpu_ratios):.2f}"),
        ("broker CPU per 1,000 events (ms), whole worker run incl. start-up, median direct / repartition",
         f"{med(1e6 * r.broker_cpu_s / r.events for r in d):.0f} / {med(1e6 * r.broker_cpu_s / r.events for r in rp):.0f}"),
        ("calls topic on disk (bytes, per fill)", f"{med(calls_bytes):,.0f} ({med(calls_bytes) / n:,.0f} B/event)"),
        ("extra bytes written to Kafka: repartition topic on disk, per run",
         per(rp, lambda r: f"{r.extra_bytes:,}") + f" ({med(r.extra_bytes for r in rp) / n:,.0f} B/event, "
         f"{med(r.extra_bytes for r in rp) / med(calls_bytes):.2f}x the calls topic)"),
        ("extra messages (repartition topic end offsets), per run", per(rp, lambda r: f"{r.extra_messages:,}")),
        ("direct: extra bytes", "0"),
        ("calls topic events per partition (keyed by app)",
         ", ".join(f"p{p}: {calls_parts.get(p, 0):,}" for p in range(args.partitions))
         + f" — busiest {busiest(calls_parts):.0%}" if calls_parts else "-"),
        ("repartition topic events per partition (keyed by drift key)",
         ", ".join(f"p{p}: {rp_parts.get(p, 0):,}" for p in range(args.partitions))
         + f" — busiest {busiest(rp_parts):.0%}" if rp_parts else "-"),
        ("per-drift-key order = calls-partition order (keys out of order / keys)",
         f"direct {sum(r.order_violations for r in d)}/{sum(r.keys for r in d)}, "
         f"repartition {sum(r.order_violations for r in rp)}/{sum(r.keys for r in rp)}"),
        ("worker subprocess wall time incl. start-up (s), median direct / repartition",
         f"{med(r.wall_s for r in d):.1f} / {med(r.wall_s for r in rp):.1f}"),
    ]
    table = Table(title="Drift-key routing: producer keying vs group_by repartition")
    for col in ("measure", "value"):
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    md = [f"Machine: {machine()}",
          f"Events: {n:,} per run (80% Avro v1/v2, 20% JSON, keyed by app as the llmwatch producer does; "
          f"{len({k for c in layout.values() for k in c})} drift keys of {len({k.split(SEP)[0] for c in layout.values() for k in c})} "
          f"apps, in {len(layout)} of the {args.partitions} partitions), "
          f"{args.repeats} pairs on a fresh topic each, alternating which mode runs first, {args.partitions} partitions, "
          "one local Kafka 4 broker, each mode a Faust worker subprocess of its own (batches of 1,000 via `take`, "
          f"fetch size {args.fetch_bytes / 2**20:g} MiB per partition). "
          "Rates and CPU are timed inside the worker from the first event processed to the last; the drift "
          "detector is not run (routing cost only: decode + drift key; repartition also forwards the raw bytes "
          "through `<agent>-<topic>-driftkey-repartition` and decodes again after it). "
          f"Total run time {total_s:.0f}s.",
          "", "| measure | value |", "|---|---|"]
    md += [f"| {a} | {b} |" for a, b in rows]
    md += ["", "Calls-topic partitions hold these drift keys (last fill): "
           + "; ".join(f"p{p}: " + ", ".join(f"{k.replace(SEP, '/')} {c:,}" for k, c in sorted(cnt.items()))
                       for p, cnt in sorted(layout.items()))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(md) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
