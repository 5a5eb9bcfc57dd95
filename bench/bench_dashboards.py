"""Dashboard query benchmark on the embedded engine: every panel, and rollups versus raw rows.

    .venv/bin/python bench/bench_dashboards.py [--rows 10000000] [--hours 24] [--runs 7] [--out bench/results/dashboards.md]

Seeds ``--rows`` calls (plus their injection/grounding verdicts and drift reports) with
``INSERT ... SELECT FROM numbers()`` (:mod:`dashboards.seed`), then runs every panel query of every
dashboard over the whole seeded range with every variable at All, ``--runs`` times each (after
one warm-up): median and p95 wall time. A few panels are also run against the raw tables to show
what the per-minute rollups buy, and the latency percentiles of the histogram rollup are checked
against the exact percentiles of the raw rows.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._machine import machine  # noqa: E402
from dashboards.panels import FILTERS, latency_quantiles  # noqa: E402
from dashboards.queries import expand, iter_panels, load_dashboards  # noqa: E402
from dashboards.seed import seed  # noqa: E402
from streams.storage.clickhouse import connect, migrate  # noqa: E402

TARGET_MS = 200.0
INTERVAL_S = 120  # what Grafana picks for 24 h on a ~1000 px wide panel
RAW_FILTERS = FILTERS
# (panel title, the same panel written against the raw tables)
RAW_TWINS = {
    "Calls per app": f"""
SELECT $__timeInterval(timestamp) AS time, service_name, count() AS calls
FROM llm_calls WHERE $__timeFilter(timestamp) AND {RAW_FILTERS}
GROUP BY time, service_name ORDER BY time""",
    "Latency p50 / p95 / p99": f"""
SELECT time, q[1] AS p50, q[2] AS p95, q[3] AS p99 FROM (
    SELECT $__timeInterval(timestamp) AS time, quantiles(0.5, 0.95, 0.99)(latency_ms) AS q
    FROM llm_calls WHERE $__timeFilter(timestamp) AND {RAW_FILTERS} GROUP BY time) ORDER BY time""",
    "p95 latency by model": f"""
SELECT $__timeInterval(timestamp) AS time, request_model, quantile(0.95)(latency_ms) AS p95_ms
FROM llm_calls WHERE $__timeFilter(timestamp) AND {RAW_FILTERS}
GROUP BY time, request_model ORDER BY time""",
    "Injection flagged rate by app": f"""
SELECT $__timeInterval(timestamp) AS time, service_name, sum(flagged) / count() AS flagged_rate
FROM detections WHERE $__timeFilter(timestamp) AND detector = 'injection' AND {RAW_FILTERS}
GROUP BY time, service_name ORDER BY time""",
}


def timed(client, sql: str, runs: int) -> tuple[float, float, int]:
    """(median ms, p95 ms, rows) over ``runs`` runs after one warm-up."""
    rows = len(client.query(sql).result_rows)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client.query(sql)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, rows


def accuracy(client, summary, var) -> list[tuple[str, float, float, float, float]]:
    """(quantile, exact over the range, histogram over the range, mean and max relative error per interval)."""
    run = lambda sql: client.query(expand(sql, summary.start, summary.end, var, INTERVAL_S)).result_rows  # noqa: E731
    levels = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
    exact_all = run(f"SELECT quantilesExact(0.5, 0.95, 0.99)(latency_ms) FROM llm_calls "
                    f"WHERE $__timeFilter(timestamp) AND {FILTERS}")[0][0]
    hist_all = run(latency_quantiles(levels))[0]
    exact = {r[0]: r[1] for r in run(f"SELECT $__timeInterval(timestamp) AS time, "
                                      f"quantilesExact(0.5, 0.95, 0.99)(latency_ms) FROM llm_calls "
                                      f"WHERE $__timeFilter(timestamp) AND {FILTERS} GROUP BY time")}
    hist = run(latency_quantiles(levels, (("$__timeInterval(minute)", "time"),)))
    out = []
    for i, name in enumerate(levels):
        errors = [abs(row[1 + i] / exact[row[0]][i] - 1) for row in hist]
        out.append((name, exact_all[i], hist_all[i], statistics.mean(errors), max(errors)))
    return out


def variables(client) -> dict[str, list[str]]:
    """All values of every variable (what "All" expands to), and two versions to compare."""
    distinct = lambda col: [r[0] for r in client.query(f"SELECT DISTINCT {col} FROM llm_calls_1m ORDER BY 1").result_rows]  # noqa: E731
    return {"app": distinct("service_name"), "model": distinct("request_model"),
            "prompt_version": distinct("prompt_version"), "environment": distinct("deployment_environment"),
            "version_a": ["v1"], "version_b": ["v3"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "dashboards.md")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="llmwatch-bench-dash-") as tmp:
        client = connect(f"chdb://{tmp}")
        try:
            migrate(client, raw_ttl_days=90, rollup_ttl_days=400)
            start = time.perf_counter()
            summary = seed(client, rows=args.rows, end=dt.datetime.now(dt.timezone.utc), hours=args.hours)
            seed_s = time.perf_counter() - start
            client.command("OPTIMIZE TABLE llm_calls_1m FINAL")
            client.command("OPTIMIZE TABLE detections_1m FINAL")
            client.command("OPTIMIZE TABLE llm_latency_1m FINAL")
            rollup_rows = int(client.query("SELECT count() FROM llm_calls_1m").result_rows[0][0])
            hist_rows = int(client.query("SELECT count() FROM llm_latency_1m").result_rows[0][0])
            print(f"seeded {summary.calls:,} calls, {summary.detections:,} verdicts, {summary.drift_reports:,} drift "
                  f"reports in {seed_s:.1f} s; llm_calls_1m has {rollup_rows:,} rows", flush=True)
            var = variables(client)
            results = []
            for dashboard in load_dashboards():
                for panel in iter_panels(dashboard):
                    sql = expand(panel.sql, summary.start, summary.end, var, INTERVAL_S)
                    med, p95, rows = timed(client, sql, args.runs)
                    results.append((dashboard["uid"].removeprefix("llmwatch-"), panel.title, med, p95, rows))
                    print(f"{results[-1][0]:>16} | {panel.title:<45} {med:8.1f} ms  p95 {p95:8.1f} ms", flush=True)
            twins = []
            by_title = {p.title: p for d in load_dashboards() for p in iter_panels(d)}
            for title, raw_sql in RAW_TWINS.items():
                rollup = timed(client, expand(by_title[title].sql, summary.start, summary.end, var, INTERVAL_S), args.runs)
                raw = timed(client, expand(raw_sql, summary.start, summary.end, var, INTERVAL_S), args.runs)
                twins.append((title, raw[0], rollup[0], raw[0] / rollup[0]))
                print(f"raw vs rollup | {title:<35} raw {raw[0]:8.1f} ms  rollup {rollup[0]:8.1f} ms  x{raw[0] / rollup[0]:.1f}")
            acc = accuracy(client, summary, var)
            for name, exact, hist, mean_err, max_err in acc:
                print(f"latency {name}: exact {exact:.1f} ms, histogram {hist:.1f} ms; per interval mean error "
                      f"{mean_err:.2%}, max {max_err:.2%}")
        finally:
            client.close()
    load_after = os.getloadavg()
    write_report(args, summary, seed_s, (rollup_rows, hist_rows), results, twins, acc, load_before, load_after)
    return 0


def write_report(args, summary, seed_s, rollup_rows, results, twins, acc, load_before, load_after) -> None:
    rollup_rows, hist_rows = rollup_rows
    meds = [r[2] for r in results]
    over = [r for r in results if r[2] > TARGET_MS]
    lines = [
        "# Dashboard queries benchmark",
        "",
        f"`.venv/bin/python bench/bench_dashboards.py --rows {args.rows} --hours {args.hours:g} --runs {args.runs}`",
        "",
        f"- Machine: {machine()}",
        f"- Load average (1/5/15 min) before: {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
        f"after: {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} (CPU shared with other jobs)",
        "- Engine: embedded ClickHouse (chDB) through clickhouse-connect, one process.",
        f"- Data: {summary.calls:,} calls, {summary.detections:,} detector verdicts, {summary.drift_reports:,} drift "
        f"reports over {args.hours:g} h, seeded in {seed_s:.1f} s (rollup views included); "
        f"`llm_calls_1m` holds {rollup_rows:,} rows, the latency and TTFT histograms `llm_latency_1m` {hist_rows:,}.",
        f"- Each panel: the whole range, every variable at All, interval {INTERVAL_S} s; one warm-up then "
        f"{args.runs} runs. Target: median <= {TARGET_MS:.0f} ms.",
        "",
        f"**{len(results)} panels: median of medians {statistics.median(meds):.1f} ms, worst {max(meds):.1f} ms; "
        f"{len(results) - len(over)}/{len(results)} within target.**",
        "",
        "| Dashboard | Panel | Median ms | p95 ms | Rows |",
        "|---|---|---:|---:|---:|",
        *[f"| {d} | {t} | {m:.1f} | {p:.1f} | {n} |" for d, t, m, p, n in results],
        "",
        "## Rollups versus raw rows (same panel, same result shape)",
        "",
        "| Panel | Raw rows ms | Rollup ms | Raw / rollup |",
        "|---|---:|---:|---:|",
        *[f"| {t} | {raw:.1f} | {roll:.1f} | {ratio:.1f}x |" for t, raw, roll, ratio in twins],
        "",
        "## Latency percentiles: histogram rollup versus exact raw percentiles",
        "",
        f"`llm_latency_1m` (log buckets of 20%, log-linear interpolation) against `quantilesExact` over the raw "
        f"rows: the whole range, and every {INTERVAL_S} s point of the p50 / p95 / p99 panel.",
        "",
        "| Quantile | Exact ms | Histogram ms | Error | Mean error per point | Max error per point |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {n} | {e:.1f} | {h:.1f} | {abs(h / e - 1):.2%} | {me:.2%} | {mx:.2%} |" for n, e, h, me, mx in acc],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
