"""Worst-case time of everything user-controlled text meets on the event loop or the detector
thread: redaction (every rule), the injection heuristics' scan, and each compiled pattern of
``streams/`` and ``detectors/`` on its own, over the adversarial 256 KB texts of
``bench/adversarial.py``. Target (issue 12): at most 50 ms each.

    python bench/bench_regex.py            # writes bench/results/regex.md
    python bench/bench_regex.py --baseline 13ad918   # also the two whole paths at that commit,
                                                     # in the same run, twice each
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import subprocess
import tempfile
import pkgutil
import re
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._machine import machine  # noqa: E402
from bench.adversarial import adversarial_texts, keyword_soup_texts  # noqa: E402

BOUND_MS = 50.0


def compiled_patterns() -> dict[str, re.Pattern]:
    """Every module-level compiled regex of the runtime packages, by ``module.NAME``."""
    found = {}
    for package in ("streams", "detectors"):
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if info.name.endswith("__main__"):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:  # modules of optional extras
                continue
            for name, value in vars(module).items():
                if isinstance(value, re.Pattern):
                    found[f"{info.name}.{name}"] = value
    return found


def scanners() -> dict[str, Callable[[str], object]]:
    """The whole per-message paths, as the worker calls them (the scan uncached)."""
    from detectors.injection import heuristics
    from streams.pipeline.redaction import RULES, Redactor

    paths: dict[str, Callable[[str], object]] = {"redaction (all rules)": Redactor.from_names("all").redact}
    paths.update({f"redaction rule {name}": rule for name, rule in RULES.items()})
    paths["injection heuristics scan (first 20,000 chars)"] = lambda t: heuristics._scan(t, True, 20000)
    return paths


def worst_times(fn: Callable[[str], object], texts: dict[str, str]) -> tuple[float, str]:
    worst, which = 0.0, ""
    for name, text in texts.items():
        started = time.perf_counter()
        fn(text)
        elapsed = (time.perf_counter() - started) * 1000
        if elapsed > worst:
            worst, which = elapsed, name
    return worst, which


# Run inside a checkout of the baseline commit: the two whole paths, which exist there too.
_BASELINE_SCRIPT = """
import json, pickle, sys, time
from detectors.injection import heuristics
from streams.pipeline.redaction import Redactor
texts = pickle.load(open(sys.argv[1], "rb"))
paths = {"redaction (all rules)": Redactor.from_names("all").redact,
         "injection heuristics scan (first 20,000 chars)": lambda t: heuristics._scan(t, True, 20000)}
out = {}
for name, fn in paths.items():
    worst, which = 0.0, ""
    for key, text in texts.items():
        started = time.perf_counter(); fn(text); elapsed = (time.perf_counter() - started) * 1000
        if elapsed > worst: worst, which = elapsed, key
    out[name] = [worst, which]
print(json.dumps(out))
"""


def baseline_worst(ref: str, texts: dict[str, str]) -> dict[str, tuple[float, str]]:
    """The whole paths' worst cases at git ``ref``, in a throwaway worktree, same interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        tree, data = Path(tmp) / "tree", Path(tmp) / "texts.pkl"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=ROOT, check=True, capture_output=True)
        try:
            data.write_bytes(pickle.dumps(texts))
            done = subprocess.run([sys.executable, "-c", _BASELINE_SCRIPT, str(data)], cwd=tree, check=True,
                                  capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    return {name: (ms, which) for name, (ms, which) in json.loads(done.stdout).items()}


def comparison(ref: str, texts: dict[str, str], rounds: int = 2) -> list[str]:
    """Markdown rows: baseline and current worst case of each whole path, alternating runs."""
    paths = scanners()
    runs: dict[str, tuple[list[float], list[float]]] = {}
    for _ in range(rounds):
        for name, (ms, _which) in baseline_worst(ref, texts).items():
            base, now = runs.setdefault(name, ([], []))
            base.append(ms)
            now.append(worst_times(paths[name], texts)[0])
    rows = [f"| path | baseline {ref} (ms) | now (ms) | ratio (best of each) |", "|---|---|---|---|"]
    for name, (base, now) in runs.items():
        rows.append(f"| {name} | {' / '.join(f'{m:.1f}' for m in base)} | {' / '.join(f'{m:.1f}' for m in now)} "
                    f"| {min(now) / min(base):.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "regex.md")
    parser.add_argument("--patterns", action="store_true", help="also time every compiled pattern alone (slow)")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also time the whole paths at this commit, same run")
    args = parser.parse_args()
    texts = {k: v for k, v in adversarial_texts().items() if k.endswith("+''") or "N" in k}  # one breaker per unit
    texts.update(keyword_soup_texts())
    rows = []
    for name, fn in scanners().items():
        rows.append((name, *worst_times(fn, texts)))
    for name, pattern in sorted(compiled_patterns().items()) if args.patterns else ():
        rows.append((name, *worst_times(lambda t, p=pattern: p.findall(t), texts)))
    rows.sort(key=lambda r: -r[1])
    md = [
        f"Machine: {machine()}",
        f"{len(texts)} adversarial texts of ~256 KB (`bench/adversarial.py`); each path or pattern's slowest one. "
        f"Target: at most {BOUND_MS:g} ms.",
        "",
        "| path or pattern | worst (ms) | on |",
        "|---|---|---|",
        *[f"| {n} | {ms:.1f} | `{w}` |" for n, ms, w in rows],
    ]
    if args.baseline:
        md += ["", f"Whole paths against commit {args.baseline}, alternating runs on the same texts:", "",
               *comparison(args.baseline, texts)]
    args.out.write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
