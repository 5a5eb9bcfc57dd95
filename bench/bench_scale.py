"""Scale-out benchmark: detect throughput with 1..K detect workers in one group, CPU per event per role.

    .venv/bin/python bench/bench_scale.py [--events 1500] [--workers 1,2,3] [--detectors injection,grounding,drift]

For each worker count K: a fresh calls topic is filled with the same generated events, K
``llmwatch worker --role detect`` processes join one consumer group, and the rate is the events
over the time from the group's first commit to its last (start-up and model loading excluded).
CPU per event is the detect workers' user+system CPU over that interval, over the events. Then
one ``--role store`` process writes the calls and the published verdicts; its CPU per event is
measured the same way, over the calls. The ingest role is measured by ``bench_ingest.py``.

On a 2-core machine K workers share two cores, so throughput cannot grow with K; the table
says which machine every figure comes from. Run it where there are more cores than workers.
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

from bench._machine import machine  # noqa: E402
from bench._worker_rate import process_cpu_s  # noqa: E402
from bench.bench_ingest import fill_topic  # noqa: E402
from rich.console import Console  # noqa: E402

from streams.config import Settings  # noqa: E402
from streams.devtools.kafka_local import LocalKafka, free_port  # noqa: E402
from streams.devtools.supervisor import WorkerProcess  # noqa: E402
from streams.kafka.lag import LagReader  # noqa: E402
from streams.kafka.topics import ensure_topics  # noqa: E402

console = Console()
SETTLE_S = 8.0  # a rebalance of a just-joined group settles in a few seconds


async def _commit_interval(settings: Settings, groups: tuple[str, ...], topics: list[str], n: int, pids: list[int],
                           timeout_s: float, also: tuple[str, list[str]] | None = None) -> tuple[float, float]:
    """(events/s, CPU seconds of ``pids``) from the first commit to the commit of the last of ``n``;
    with ``also`` = (group, topics), that group must be caught up on those topics too."""
    first = None
    deadline = time.monotonic() + timeout_s
    async with LagReader(settings.kafka_bootstrap) as reader:
        while time.monotonic() < deadline:
            lag = await reader.lag_if_ready(groups, topics)
            remaining = sum(lag.values()) if lag else n
            now = time.perf_counter()
            if first is None and remaining < n:
                first = (now, n - remaining, sum(process_cpu_s(p) for p in pids))
            if remaining == 0 and also is not None:
                rest = await reader.lag_if_ready(*also)
                remaining = sum(rest.values()) if rest is not None else 1
            if remaining == 0 and first is not None:
                return (n - first[1]) / (now - first[0]), sum(process_cpu_s(p) for p in pids) - first[2]
            await asyncio.sleep(0.1)
    raise TimeoutError(f"not caught up within {timeout_s}s")


def run_detect(base: Settings, k: int, events: int, home: Path) -> dict[str, float]:
    s = dataclasses.replace(base, home=str(home / f"k{k}"), calls_topic=f"scale{k}.calls", consumer_group=f"scale{k}",
                            results_topic=f"scale{k}.detections", drift_reports_topic=f"scale{k}.drift",
                            dead_letter_topic=f"scale{k}.dlq")
    ensure_topics(dataclasses.replace(s, role="store"))
    detect = dataclasses.replace(s, role="detect")
    workers = [WorkerProcess(dataclasses.replace(detect, home=str(home / f"k{k}" / f"d{i}"), web_port=free_port())).start()
               for i in range(k)]
    try:
        # Every worker loaded and in the group before the events arrive: a join mid-run would
        # pause the group for a rebalance and measure that instead.
        for w in workers:
            w.wait_ready(timeout=300)
        time.sleep(SETTLE_S)
        asyncio.run(fill_topic(s.kafka_bootstrap, s.calls_topic, events))
        rate, cpu = asyncio.run(_commit_interval(detect, detect.calls_groups, [s.calls_topic], events,
                                                 [w.proc.pid for w in workers], 1800))
    finally:
        for w in workers:
            w.stop()
    out = {"workers": k, "events_per_s": rate, "detect_cpu_ms_per_event": 1000 * cpu / events}
    store = dataclasses.replace(s, role="store")
    proc = WorkerProcess(store).start()
    try:
        # every call, and every verdict and report the detect workers published
        _, cpu_store = asyncio.run(_commit_interval(store, (store.ingest_group,), [s.calls_topic], events, [proc.proc.pid],
                                                    600, also=(store.group_id, [s.results_topic, s.drift_reports_topic])))
    finally:
        proc.stop()
    out["store_cpu_ms_per_event"] = 1000 * cpu_store / events
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1500)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--detectors", default="injection,grounding,drift")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale.md")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="llmwatch-scale-") as tmp:
        home = Path(tmp)
        kafka = LocalKafka(home / "kafka", port=free_port())
        with console.status("starting Kafka…"):
            kafka.start()
        try:
            base = Settings(kafka_bootstrap=kafka.bootstrap, detectors=args.detectors)
            for k in counts:
                with console.status(f"{k} detect worker(s) on {args.events:,} events…"):
                    rows.append(run_detect(base, k, args.events, home))
                r = rows[-1]
                console.print(f"  {k} worker(s): {r['events_per_s']:.1f} events/s, detect CPU "
                              f"{r['detect_cpu_ms_per_event']:.1f} ms/event, store CPU {r['store_cpu_ms_per_event']:.2f} ms/event")
        finally:
            kafka.stop()
    one = rows[0]["events_per_s"]
    md = [f"Machine: {machine()}", f"Events: {args.events:,} generated calls per run; detectors: {args.detectors}; "
          "4 partitions; each run a fresh topic and consumer group.", "",
          "| detect workers | events/s | vs 1 worker | detect CPU ms/event | store CPU ms/event |", "|---|---|---|---|---|"]
    md += [f"| {r['workers']} | {r['events_per_s']:.1f} | {r['events_per_s'] / one:.2f} | {r['detect_cpu_ms_per_event']:.1f} "
           f"| {r['store_cpu_ms_per_event']:.2f} |" for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(md) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
