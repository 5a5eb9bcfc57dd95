"""Run every benchmark under bench/ in turn: ``python bench/run_all.py [--quick]``.

Each writes its own table to ``bench/results/<name>.md``; BENCHMARKS.md summarises them.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = {
    "embeddings": ["bench_embeddings.py"],
    "detectors": ["bench_detectors.py"],
    "ingest": ["bench_ingest.py"],
    "ingest_floor": ["bench_ingest_floor.py"],
    "pipeline": ["bench_pipeline.py"],
    "scale": ["bench_scale.py"],
    "repartition": ["bench_repartition.py"],
    "otlp": ["bench_otlp.py"],
    "quality_share": ["bench_quality_share.py"],
    "dashboards": ["bench_dashboards.py"],
    "regex": ["bench_regex.py"],
}
QUICK_ARGS = {
    "ingest": ["--events", "30000", "--repeats", "1", "--latency-seconds", "15"],
    "ingest_floor": ["--events", "10000", "--repeats", "1"],
    "scale": ["--events", "600", "--workers", "1,2"],
    "dashboards": ["--rows", "1000000"],
    "detectors": ["--n", "100"],
    "quality_share": ["--n", "128", "--repeats", "1"],
    "pipeline": ["--warmup", "300", "--events", "500", "--latency-seconds", "20", "--variants", "1"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (minutes instead of tens of minutes)")
    ap.add_argument("only", nargs="*", help=f"a subset of: {', '.join(BENCHES)}")
    args = ap.parse_args()
    failed = []
    for name, cmd in BENCHES.items():
        if args.only and name not in args.only:
            continue
        extra = QUICK_ARGS.get(name, []) if args.quick else []
        print(f"==> {name}", flush=True)
        started = time.monotonic()
        rc = subprocess.call([sys.executable, str(HERE / cmd[0]), *cmd[1:], *extra])
        print(f"<== {name}: exit {rc} in {time.monotonic() - started:.0f}s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
