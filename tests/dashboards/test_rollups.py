"""The rollup-backed panels agree with the raw rows they replace (seeded data, every variable at All)."""
from __future__ import annotations

import pytest

from dashboards.panels import FILTERS, examples, latency_quantiles
from dashboards.queries import expand
from tests.dashboards.conftest import ALL

TOLERANCE = 0.035  # log buckets of 20% with interpolation: ~1% on average, a few % at worst


def _run(client, summary, sql: str, variables=ALL, interval: int = 300):
    return client.query(expand(sql, summary.start, summary.end, variables, interval)).result_rows


@pytest.mark.parametrize(("metric", "column"), [("latency_ms", "latency_ms"), ("ttft_ms", "time_to_first_token_ms")])
def test_histogram_percentiles_match_exact_raw_percentiles(seeded, metric: str, column: str) -> None:
    client, summary = seeded
    rollup = _run(client, summary, latency_quantiles({"p50": 0.5, "p95": 0.95, "p99": 0.99}, metric=metric))[0]
    exact = _run(client, summary, f"SELECT quantilesExact(0.5, 0.95, 0.99)({column}) FROM llm_calls "
                                  f"WHERE $__timeFilter(timestamp) AND {column} IS NOT NULL AND {FILTERS}")[0][0]
    for got, want in zip(rollup, exact):
        assert got == pytest.approx(want, rel=TOLERANCE), (metric, rollup, exact)


def test_histogram_p95_per_model_matches_raw(seeded) -> None:
    client, summary = seeded
    rollup = dict(_run(client, summary, latency_quantiles({"p95": 0.95}, (("request_model", "model"),))))
    exact = dict(_run(client, summary, f"SELECT request_model, quantileExact(0.95)(latency_ms) FROM llm_calls "
                                       f"WHERE $__timeFilter(timestamp) AND {FILTERS} GROUP BY request_model"))
    assert rollup.keys() == exact.keys()
    for model, want in exact.items():
        assert rollup[model] == pytest.approx(want, rel=TOLERANCE), model


def test_histogram_counts_every_call_once(seeded) -> None:
    client, summary = seeded
    counts = dict(client.query("SELECT metric, sum(arraySum(hist.2)) FROM llm_latency_1m GROUP BY metric").result_rows)
    raw = client.query("SELECT count(), countIf(time_to_first_token_ms IS NOT NULL) FROM llm_calls").result_rows[0]
    assert (counts["latency_ms"], counts["ttft_ms"]) == raw


@pytest.mark.parametrize("detector", ["injection", "grounding"])
def test_example_tables_list_the_newest_flagged_verdicts(seeded, detector: str) -> None:
    """The rollup-derived time bound drops nothing: same rows as scanning every flagged verdict."""
    client, summary = seeded
    got = _run(client, summary, examples(detector, "c.event_id AS call_id"))
    want = _run(client, summary, f"""
SELECT d.timestamp, d.event_id
FROM detections AS d
WHERE $__timeFilter(d.timestamp) AND d.detector = '{detector}' AND d.flagged = 1
ORDER BY d.timestamp DESC
LIMIT 50""")
    assert len(got) == len(want) == 50
    # the joined call is the verdict's own event: every flagged verdict found its call
    assert [(r[0], r[6]) for r in got] == [(r[0], r[1]) for r in want]
