"""The quality detector's share of the detection pipeline's per-event CPU, at the default settings.

    .venv/bin/python bench/bench_quality_share.py [--n 400] [--repeats 2]   # writes bench/results/quality_share.md

The worker runs every detector agent on every call, on one detector thread, with one process-wide
embedder whose cache lets a detector reuse a text another one embedded. This replays that on real
completions: ``--n`` events after as many warm-up events (chat answers from ``refusal_dev.jsonl``
and RAG answers with passages from ``grounding_dev.jsonl``, shuffled with a fixed seed), in batches
of 64, each batch through the worker's runners in turn (injection, grounding on RAG calls, drift,
quality; :mod:`streams.pipeline.runners`), timing the CPU of each (process CPU: the embedder runs
two threads). Variants, alternated within each repeat, the least disturbed (lowest total CPU) kept:

* **shared**: one embedder for all, as in the worker;
* **quality alone**: quality on an embedder of its own (what it would cost without sharing).

The share is quality's CPU over the detectors' total; decoding, Kafka and ClickHouse are left
out, so the worker's real share is lower.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._machine import machine  # noqa: E402
from detectors.base import Detector, Event  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64
ORDER = ("injection", "grounding", "drift", "quality")


def load(eval_dir: Path, n: int) -> list[Event]:
    """``2 * n`` events (warm-up, then timed): 3 chat answers for each RAG answer, shuffled."""
    rows = [json.loads(line) for line in (eval_dir / "refusal_dev.jsonl").open(encoding="utf-8") if line.strip()]
    rag = [json.loads(line) for line in (eval_dir / "grounding_dev.jsonl").open(encoding="utf-8") if line.strip()]
    rng = random.Random(0)
    rng.shuffle(rows)
    rng.shuffle(rag)
    picked = rows[: (3 * 2 * n) // 4] + rag[: 2 * n - (3 * 2 * n) // 4]
    rng.shuffle(picked)
    return [Event(prompt=r.get("prompt") or "", response=r.get("response"), context=tuple(r["context"]) if r.get("context") else None,
                  event_id=f"e{i}", app="bench", model="m", prompt_version="v1") for i, r in enumerate(picked)]


def detectors(embedder: Any, quality_embedder: Any) -> dict[str, tuple[Detector, Callable[[Event], bool]]]:
    """The worker's default detectors (see streams.pipeline.runners), each with when it applies."""
    from detectors.drift import DriftDetector
    from detectors.grounding import GroundingDetector
    from detectors.injection import InjectionDetector
    from detectors.quality import QualityDetector

    return {
        "injection": (InjectionDetector(cascade=True, scan_context=True, embedder=embedder), lambda e: True),
        "grounding": (GroundingDetector(embedder=embedder), lambda e: bool(e.context) and bool(e.response)),
        "drift": (DriftDetector(embedder=embedder), lambda e: True),
        "quality": (QualityDetector(embedder=quality_embedder), lambda e: e.response is not None),
    }


def fresh() -> Any:
    from detectors.embeddings import make_embedder

    emb = make_embedder()
    emb.encode(["warm up the onnxruntime session"])
    emb.cache_clear()
    return emb


def run(events: list[Event], n: int, shared: bool) -> dict[str, float]:
    """CPU seconds per detector over the timed half of ``events``."""
    emb = fresh()
    dets = detectors(emb, emb if shared else fresh())
    spent = dict.fromkeys(ORDER, 0.0)
    for start in range(0, len(events), BATCH):
        batch = events[start:start + BATCH]
        for name in ORDER:
            det, applies = dets[name]
            chosen = [e for e in batch if applies(e)]
            t0 = time.process_time()
            if chosen:
                det.detect_batch(chosen)
            if start >= n:  # the first n events warm the drift windows and the caches
                spent[name] += time.process_time() - t0
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=384, help="timed events (as many again warm up)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("LLMWATCH_EVAL_DIR", ROOT.parent / "shared" / "eval")))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality_share.md")
    args = ap.parse_args()
    n = args.n // BATCH * BATCH
    events = load(args.eval_dir, n)
    best: dict[str, dict[str, float]] = {}
    for r in range(args.repeats):
        for variant, shared in (("shared", True), ("quality alone", False)):
            spent = run(events, n, shared)
            print(f"repeat {r + 1} {variant}: " + ", ".join(f"{k} {v * 1000 / n:.2f} ms" for k, v in spent.items()), flush=True)
            if variant not in best or sum(spent.values()) < sum(best[variant].values()):
                best[variant] = spent
    text = report(best, n, args)
    args.out.write_text(text)
    print(text)


def report(best: dict[str, dict[str, float]], n: int, args: argparse.Namespace) -> str:
    lines = [
        "# The quality detector's share of the detectors' per-event CPU (default settings)", "",
        f"`.venv/bin/python bench/bench_quality_share.py --n {args.n} --repeats {args.repeats}`, {machine()}.", "",
        f"{n} timed events after {n} warm-up events (3 chat answers from `refusal_dev.jsonl` for each RAG answer from "
        "`grounding_dev.jsonl`), batches of 64 through injection, grounding (RAG calls), drift and quality in turn; "
        f"process CPU per event, the least disturbed of {args.repeats} repeats per variant. Decoding, Kafka and "
        "ClickHouse are not counted, so the worker's share is lower.", "",
        "| variant | injection ms | grounding ms | drift ms | quality ms | total ms | quality share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant, spent in best.items():
        per = {k: v * 1000 / n for k, v in spent.items()}
        total = sum(per.values())
        lines.append(f"| {variant} | " + " | ".join(f"{per[k]:.2f}" for k in ORDER) + f" | {total:.2f} | {per['quality'] / total:.1%} |")
    shared, alone = best["shared"]["quality"], best["quality alone"]["quality"]
    lines += ["", f"Sharing the embedder saves {1 - shared / alone:.0%} of the quality detector's CPU "
                  f"({alone * 1000 / n:.2f} -> {shared * 1000 / n:.2f} ms per event)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
