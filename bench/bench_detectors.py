"""Detector speed: events/s and per-event latency, beside the pure embedding cost of the same texts.

    .venv/bin/python bench/bench_detectors.py [--n 300] [--repeats 2]   # prints a table, writes bench/results/detectors.md

For each detector (injection with cascade on and off, grounding, drift) it takes ``--n`` events
from the dev sets in ``$LLMWATCH_EVAL_DIR`` (default: shared/eval beside the repository) and measures, in the same run:

* **detector**: ``detect_batch`` over batches of 32 on a fresh embedder (empty cache) that
  records every ``encode`` call the detector makes; events/s, and per-event latency as batch
  time / batch size (p50/p99 over the batches);
* **embedding only**: after each batch, a second fresh embedder encodes exactly the calls the
  detector just made, in the same order and with the same batching: the events/s the
  embeddings alone would allow (interleaved batch by batch, so both see the same load);
* **ratio** = detector events/s / embedding-only events/s (1.0: the detector adds nothing
  beyond its embeddings; target >= 0.8);
* **detect()** latency p50/p99: one event at a time on a third fresh embedder (``--sample`` events);
* **warm cache**: the same events again on a fresh detector sharing the now-warm embedder.

Each batch's work is identical in every round, so over ``--repeats`` rounds the fastest time of
each batch is kept, for the detector and the embedding alone separately (the machine is
shared; the least disturbed run is the most faithful).
The drift detector is timed in steady state: its windows (300 reference + 100 current) are
filled from the first 400 events of the stream first, untimed, so an MMD test runs every 10
events as in production. ``--profile`` prints where a detector's non-embedding time goes.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._machine import machine  # noqa: E402
from detectors.base import Detector, Event  # noqa: E402
from detectors.drift import DriftDetector  # noqa: E402
from detectors.embeddings import DEFAULT_BACKEND, make_embedder  # noqa: E402
from detectors.grounding import GroundingDetector  # noqa: E402
from detectors.injection import InjectionDetector  # noqa: E402

BATCH = 32
DRIFT_WARMUP = 400  # reference_size + window_size of the default DriftDetector


# ------------------------------------------------------------------------------ embedder plumbing

class Recorder:
    """An embedder proxy that records the texts of every ``encode`` call (one list per call)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        self.calls.append(texts)
        return self.inner.encode(texts)


def fresh_embedder() -> Any:
    """A new default-backend embedder, its session warmed up, its cache empty."""
    emb = make_embedder()
    emb.encode(["warm up the onnxruntime session"])
    emb.cache_clear()
    return emb


# ------------------------------------------------------------------------------ data

def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sample_rows(rows: list[dict[str, Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` rows drawn with a fixed seed (the files are grouped by source)."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def to_event(row: dict[str, Any], i: int, app: str) -> Event:
    ctx = row.get("context")
    return Event(prompt=row.get("prompt") or "", response=row.get("response"),
                 context=tuple(ctx) if ctx else None, event_id=str(row.get("id", i)), app=app)


@dataclass
class Spec:
    label: str
    make: Callable[[Any], Detector]
    events: list[Event]
    warmup: list[Event] = field(default_factory=list)
    note: str = ""


def specs(eval_dir: Path, n: int) -> list[Spec]:
    inj = [to_event(r, i, "bench") for i, r in enumerate(sample_rows(load_jsonl(eval_dir / "injection_dev.jsonl"), n))]
    gro = [to_event(r, i, "bench") for i, r in enumerate(sample_rows(load_jsonl(eval_dir / "grounding_dev.jsonl"), n))]
    ind = [to_event(r, i, "bench") for i, r in
           enumerate(sample_rows(load_jsonl(eval_dir / "indirect_injection_dev.jsonl"), n))]
    stream = [to_event(r, i, "bench") for i, r in enumerate(load_jsonl(eval_dir / "drift_dev_alpaca_to_gsm8k.jsonl"))]
    if len(stream) < DRIFT_WARMUP + n:
        raise SystemExit(f"the drift stream has {len(stream)} events; --n may be at most {len(stream) - DRIFT_WARMUP}")
    return [
        Spec("injection (cascade on)", lambda e: InjectionDetector(cascade=True, embedder=e), inj,
             note="prompt; heuristic certainty skips the embedding"),
        Spec("injection (cascade off)", lambda e: InjectionDetector(cascade=False, embedder=e), inj,
             note="prompt"),
        Spec("injection (prompt + passages, as the worker)",
             lambda e: InjectionDetector(cascade=True, scan_context=True, embedder=e), ind,
             note="prompt, passages and their order-like segments (indirect dev set)"),
        Spec("grounding", lambda e: GroundingDetector(embedder=e), gro,
             note="context chunks + claims + question + question+claim"),
        Spec("drift", lambda e: DriftDetector(embedder=e), stream[DRIFT_WARMUP:DRIFT_WARMUP + n],
             warmup=stream[:DRIFT_WARMUP], note="prompt; steady state, MMD test every 10 events"),
    ]


def batches(events: Sequence[Event], size: int = BATCH) -> list[Sequence[Event]]:
    return [events[i:i + size] for i in range(0, len(events), size)]


def ready(spec: Spec, emb: Any, clear: bool = True) -> Detector:
    """A detector on ``emb``, its state warmed up where it has one, the embedder cache cleared."""
    det = spec.make(emb)
    for b in batches(spec.warmup):
        det.detect_batch(b)
    if clear:
        inner = emb.inner if isinstance(emb, Recorder) else emb
        inner.cache_clear()
        if isinstance(emb, Recorder):
            emb.calls.clear()
    return det


# ------------------------------------------------------------------------------ measurements

@dataclass
class Result:
    label: str
    n: int
    note: str
    texts: int = 0
    distinct: int = 0
    calls: int = 0
    det_s: float = float("inf")
    emb_s: float = float("inf")
    batch_ms: list[float] = field(default_factory=list)  # per-event ms of each batch (best round)
    single_ms: list[float] = field(default_factory=list)
    warm_s: float = float("inf")
    flagged: int = 0
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def det_eps(self) -> float:
        return self.n / self.det_s

    @property
    def emb_eps(self) -> float:
        return self.n / self.emb_s

    @property
    def ratio(self) -> float:
        return self.emb_s / self.det_s

    @property
    def warm_eps(self) -> float:
        return self.n / self.warm_s


def run_round(spec: Spec) -> tuple[list[float], list[float], list[list[str]], Recorder, list[Any]]:
    """One cold run: per batch, the detector's time, then the embedding-only time of the very
    ``encode`` calls it just made (interleaved, so both see the same machine load)."""
    emb = Recorder(fresh_embedder())
    det = ready(spec, emb)
    replay = fresh_embedder()
    det_s: list[float] = []
    emb_s: list[float] = []
    calls: list[list[str]] = []
    verdicts: list[Any] = []
    for b in batches(spec.events):
        emb.calls.clear()
        t0 = time.perf_counter()
        verdicts += det.detect_batch(b)
        det_s.append(time.perf_counter() - t0)
        batch_calls = [list(c) for c in emb.calls]
        t0 = time.perf_counter()
        for texts in batch_calls:
            replay.encode(texts)
        emb_s.append(time.perf_counter() - t0)
        calls += batch_calls
    return det_s, emb_s, calls, emb, verdicts


def time_single(spec: Spec, k: int) -> list[float]:
    det = ready(spec, fresh_embedder())
    out = []
    for e in spec.events[:k]:
        t0 = time.perf_counter()
        det.detect(e)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(spec: Spec, repeats: int, sample: int, console: Console) -> Result:
    """Best of ``repeats`` rounds, batch by batch (each batch's work is the same every round)."""
    res = Result(spec.label, len(spec.events), spec.note)
    best_det: list[float] | None = None
    best_emb: list[float] | None = None
    for r in range(repeats):
        det_s, emb_s, calls, emb, verdicts = run_round(spec)
        best_det = det_s if best_det is None else [min(a, b) for a, b in zip(best_det, det_s)]
        best_emb = emb_s if best_emb is None else [min(a, b) for a, b in zip(best_emb, emb_s)]
        console.log(f"{spec.label}: round {r + 1}: detector {sum(det_s):.2f}s, embedding only {sum(emb_s):.2f}s")
    assert best_det is not None and best_emb is not None
    res.det_s, res.emb_s = sum(best_det), sum(best_emb)
    res.batch_ms = [1000 * t / len(b) for t, b in zip(best_det, batches(spec.events))]
    res.calls = len(calls)
    res.texts = sum(len(c) for c in calls)
    res.distinct = len({t for c in calls for t in c})
    res.flagged = sum(v.flagged for v in verdicts)
    for v in verdicts:
        res.labels[v.label] = res.labels.get(v.label, 0) + 1
    # second pass with the warm cache: a fresh detector on the embedder that just saw these texts
    det = ready(spec, emb, clear=False)
    t0 = time.perf_counter()
    for b in batches(spec.events):
        det.detect_batch(b)
    res.warm_s = time.perf_counter() - t0
    res.single_ms = time_single(spec, sample)
    return res


def profile(spec: Spec, console: Console, top: int = 18) -> str:
    """cProfile of one cold batch run, sorted by own time, embedder internals included."""
    emb = Recorder(fresh_embedder())
    det = ready(spec, emb)
    prof = cProfile.Profile()
    prof.enable()
    for b in batches(spec.events):
        det.detect_batch(b)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    console.print(f"[bold]profile: {spec.label}[/bold]")
    console.print(buf.getvalue())
    return buf.getvalue()


# ------------------------------------------------------------------------------ report

def pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


HEADER = ["detector", "events", "texts embedded (distinct)", "detector ev/s", "embedding-only ev/s", "ratio",
          "detect() p50 / p99 ms", "batch ms/event p50 / p99", "warm-cache ev/s"]


def row(r: Result) -> list[str]:
    return [
        r.label, str(r.n), f"{r.texts} ({r.distinct})", f"{r.det_eps:.1f}", f"{r.emb_eps:.1f}", f"{r.ratio:.2f}",
        f"{pct(r.single_ms, 50):.1f} / {pct(r.single_ms, 99):.1f}",
        f"{pct(r.batch_ms, 50):.1f} / {pct(r.batch_ms, 99):.1f}",
        f"{r.warm_eps:.0f} ({r.warm_eps / r.det_eps:.0f}x)",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="events per detector (default 300)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds; the fastest is kept (default 2)")
    ap.add_argument("--sample", type=int, default=32, help="events timed one by one with detect() (default 32)")
    ap.add_argument("--only", action="append", help="run only detectors whose label contains this (repeatable)")
    ap.add_argument("--profile", action="store_true", help="cProfile each detector whose ratio is below 0.8")
    ap.add_argument("--eval-dir", default=os.environ.get("LLMWATCH_EVAL_DIR", str(ROOT.parent / "shared" / "eval")))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "detectors.md"))
    args = ap.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.sample < 1:
        ap.error("--n, --repeats and --sample must be positive")

    console = Console(width=200)
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    todo = [s for s in specs(Path(args.eval_dir), args.n)
            if not args.only or any(o in s.label for o in args.only)]
    results = [measure(s, args.repeats, min(args.sample, args.n), console) for s in todo]
    profiles = {}
    if args.profile:
        for s, r in zip(todo, results):
            if r.ratio < 0.8:
                profiles[s.label] = profile(s, console)
    load_after = os.getloadavg()

    table = Table(title=f"Detector speed ({args.n} events each, batch {BATCH}, best of {args.repeats})")
    for h in HEADER:
        table.add_column(h, justify="left" if h == "detector" else "right")
    for r in results:
        table.add_row(*row(r))
    console.print(table)

    md = [
        "# Detector speed: events/s, latency, and the cost beside the embeddings",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- load average before: {' '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{' '.join(f'{x:.2f}' for x in load_after)} (1/5/15 min; shared machine: absolute figures vary, "
        "ratios less so)",
        f"- command: `.venv/bin/python bench/bench_detectors.py --n {args.n} --repeats {args.repeats}"
        f" --sample {args.sample}`" + "".join(f" --only '{o}'" for o in args.only or []),
        f"- embedder: default backend ({DEFAULT_BACKEND}) all-MiniLM-L6-v2, 2 threads, internal batch 32; a fresh one (empty "
        "cache) for every timed run",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(HEADER) - 1)) + " |",
    ]
    md += ["| " + " | ".join(row(r)) + " |" for r in results]
    md += [
        "",
        "Columns: *detector ev/s*: `detect_batch` in batches of 32, cold cache. *embedding-only ev/s*: the "
        "same events divided by the time a fresh embedder takes to encode exactly the texts the detector "
        "passed to `encode` (recorded by a proxy, same calls, same order). *ratio* = detector ev/s / "
        "embedding-only ev/s: the share of the detector's time that is its embeddings (target >= 0.8). "
        "*detect()*: one event at a time, cold cache, first "
        f"{min(args.sample, args.n)} events. *batch ms/event*: each batch's time / its size. *warm-cache*: "
        "a second pass over the same events on the warm embedder (speed-up over cold in brackets).",
        "",
        "| detector | inputs embedded | encode calls | flagged | labels |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    md += [f"| {r.label} | {r.note} | {r.calls} | {r.flagged} | "
           f"{', '.join(f'{k} {v}' for k, v in sorted(r.labels.items()))} |" for r in results]
    md += [""]
    for label, text in profiles.items():
        md += [f"## Profile: {label}", "", "```", text.strip(), "```", ""]
    out = Path(args.out)
    if out.exists() and "\n## Notes" in (old := out.read_text()):  # hand-written notes survive a rerun
        md += ["## Notes" + old.split("\n## Notes", 1)[1].rstrip(), ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md))
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
