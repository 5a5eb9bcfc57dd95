"""Worst-case time of everything user-controlled text meets on the event loop or the detector
thread: redaction (every rule), the injection heuristics' scan, and each compiled pattern of
``streams/`` and ``detectors/`` on its own, over the adversarial 256 KB texts of
``bench/adversarial.py``. Target (issue 12): at most 50 ms each.

    python bench/bench_regex.py            # writes bench/results/regex.md
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._machine import machine  # noqa: E402
from bench.adversarial import adversarial_texts  # noqa: E402

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
    from streams.redaction import RULES, Redactor

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "regex.md")
    parser.add_argument("--patterns", action="store_true", help="also time every compiled pattern alone (slow)")
    args = parser.parse_args()
    texts = {k: v for k, v in adversarial_texts().items() if k.endswith("+''") or "N" in k}  # one breaker per unit
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
    args.out.write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
