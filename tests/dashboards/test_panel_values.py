"""Panels show the right numbers: each figure a user reads off a dashboard equals the same figure
computed from the raw tables (``llm_calls`` and ``detections``, FINAL), on the seeded data; and
every panel's values are in range (rates in [0, 1], counts and money non-negative, percentiles
ordered, no NaN). The column tests in test_panels.py would pass with any numbers at all."""
from __future__ import annotations

import datetime as dt
import math

import pytest

from dashboards.queries import Panel, expand, iter_panels, load_dashboards
from tests.dashboards.conftest import ALL

PANELS = {(d["uid"].removeprefix("llmwatch-"), p.title): p for d in load_dashboards() for p in iter_panels(d)}


def run(seeded, key: tuple[str, str], variables: dict | None = None) -> list[dict]:
    """The panel's rows as dicts, over a range that holds every seeded row."""
    client, summary = seeded
    start = summary.start - dt.timedelta(hours=1)
    end = summary.end + dt.timedelta(hours=1)
    result = client.query(expand(PANELS[key].sql, start, end, variables or ALL, 300))
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


def raw(seeded, sql: str) -> list[tuple]:
    return seeded[0].query(sql).result_rows


def test_overview_stats_equal_the_raw_calls(seeded) -> None:
    calls, errors, cost = raw(seeded, "SELECT count(), countIf(status = 'error'), sum(ifNull(cost_usd, 0)) FROM llm_calls FINAL")[0]
    assert calls == seeded[1].calls
    assert run(seeded, ("overview", "Calls")) == [{"calls": calls}]
    assert run(seeded, ("overview", "Error rate"))[0]["error_rate"] == pytest.approx(errors / calls)
    assert run(seeded, ("overview", "Cost"))[0]["cost_usd"] == pytest.approx(cost, rel=1e-9)


def test_p95_latency_is_within_the_histograms_error_of_the_exact_percentile(seeded) -> None:
    exact = raw(seeded, "SELECT quantileExact(0.95)(latency_ms) FROM llm_calls FINAL")[0][0]
    shown = run(seeded, ("overview", "p95 latency"))[0]["p95_ms"]
    assert shown == pytest.approx(exact, rel=0.035)  # the bucket error stated in ch_0003_rollups.sql


def test_calls_per_app_add_up_to_each_apps_raw_count(seeded) -> None:
    totals: dict[str, int] = {}
    for row in run(seeded, ("overview", "Calls per app")):
        totals[row["service_name"]] = totals.get(row["service_name"], 0) + row["calls"]
    assert totals == dict(raw(seeded, "SELECT service_name, count() FROM llm_calls FINAL GROUP BY service_name"))


def test_cost_table_by_app_and_model_equals_raw_sums(seeded) -> None:
    expected = {
        (app, model): (n, cost, tin, tout, mean)
        for app, model, n, cost, tin, tout, mean in raw(
            seeded,
            "SELECT service_name, request_model, count(), sum(ifNull(cost_usd, 0)), sum(input_tokens), "
            "sum(output_tokens), avg(latency_ms) FROM llm_calls FINAL GROUP BY 1, 2")
    }
    rows = run(seeded, ("cost-latency", "Cost and latency by app and model"))
    assert {(r["app"], r["model"]) for r in rows} == set(expected)
    for r in rows:
        n, cost, tin, tout, mean = expected[(r["app"], r["model"])]
        assert (r["call_count"], r["tokens_in"], r["tokens_out"]) == (n, tin, tout)
        assert r["spend_usd"] == pytest.approx(cost, rel=1e-9)
        assert r["cost_per_1k_calls"] == pytest.approx(cost / n * 1000, rel=1e-9)
        assert r["mean_latency_ms"] == pytest.approx(mean, rel=1e-9)
    assert [r["spend_usd"] for r in rows] == sorted((r["spend_usd"] for r in rows), reverse=True)


def test_version_comparison_equals_raw_figures_per_version(seeded) -> None:
    rows = {r["version"]: r for r in run(seeded, ("prompt-versions", "Version A vs B"))}
    assert set(rows) == {"v1", "v3"}  # exactly the two versions chosen
    for version, row in rows.items():
        n, err, cost, out = raw(
            seeded,
            f"SELECT count(), countIf(status = 'error'), sum(ifNull(cost_usd, 0)), sum(output_tokens) "
            f"FROM llm_calls FINAL WHERE prompt_version = '{version}'")[0]
        flagged, checked = raw(
            seeded,
            f"SELECT sum(flagged), count() FROM detections FINAL WHERE detector = 'injection' AND prompt_version = '{version}'")[0]
        assert row["calls"] == n
        assert row["error_rate"] == pytest.approx(err / n)
        assert row["cost_per_call"] == pytest.approx(cost / n, rel=1e-9)
        assert row["output_tokens_per_call"] == pytest.approx(out / n)
        assert row["injection_rate"] == pytest.approx(flagged / checked)
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]


@pytest.mark.parametrize(
    ("key", "column", "detector", "what"),
    [
        (("safety", "Flagged prompts"), "flagged_count", "injection", "sum(flagged)"),
        (("overview", "Injection flagged"), "flagged_rate", "injection", "avg(flagged)"),
        (("quality", "Checked answers"), "answers", "grounding", "count()"),
        (("quality", "Unsupported answer rate"), "flagged_rate", "grounding", "avg(flagged)"),
    ],
)
def test_detector_stats_equal_the_raw_verdicts(seeded, key, column: str, detector: str, what: str) -> None:
    expected = raw(seeded, f"SELECT {what} FROM detections FINAL WHERE detector = '{detector}'")[0][0]
    assert run(seeded, key)[0][column] == pytest.approx(expected)


def test_flagged_by_layer_splits_the_flagged_count(seeded) -> None:
    layers = dict(raw(seeded, "SELECT label, sum(flagged) FROM detections FINAL WHERE detector = 'injection' "
                              "AND label != 'clean' GROUP BY label"))
    assert {r["layer"]: r["flagged"] for r in run(seeded, ("safety", "Flagged by layer"))} == layers


def test_one_app_selected_shows_only_that_apps_calls(seeded) -> None:
    only = run(seeded, ("overview", "Calls"), {**ALL, "app": ["rag-search"]})[0]["calls"]
    assert only == raw(seeded, "SELECT count() FROM llm_calls FINAL WHERE service_name = 'rag-search'")[0][0]
    assert 0 < only < seeded[1].calls


def _in_range(panel: Panel, row: dict) -> list[str]:
    bad = []
    for name, value in row.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            bad.append(f"{name}={value}")
        elif name.endswith("rate") and not 0 <= value <= 1:
            bad.append(f"{name}={value} is not a rate")
        elif name != "min_p_value" and name not in ("statistic", "mean_score", "score") and value < 0:
            bad.append(f"{name}={value} is negative")
    pcts = [row[c] for c in ("p50", "p95", "p99") if c in row] or [row[c] for c in ("p50_ms", "p95_ms", "p99_ms") if c in row]
    if len(pcts) > 1 and all(p is not None for p in pcts) and pcts != sorted(pcts):
        bad.append(f"percentiles out of order: {pcts}")
    return bad


@pytest.mark.parametrize("key", sorted(PANELS), ids=lambda k: f"{k[0]}:{k[1]}")
def test_every_panels_values_are_in_range(seeded, key) -> None:
    rows = run(seeded, key)
    assert rows
    problems = [f"{p}" for row in rows for p in _in_range(PANELS[key], row)]
    assert not problems, problems[:5]


@pytest.mark.parametrize(("title", "column", "metric"), [
    ("Refusal rate", "refusal_rate", "refusal"), ("Truncation rate", "truncation_rate", "truncation")])
def test_quality_stats_equal_the_raw_check_rows(seeded, title: str, column: str, metric: str) -> None:
    expected = raw(seeded, f"SELECT avg(flagged) FROM quality_scores FINAL WHERE metric = '{metric}'")[0][0]
    assert run(seeded, ("quality", title))[0][column] == pytest.approx(expected)


def test_quality_checks_equal_the_verdicts_they_were_split_from(seeded) -> None:
    """Every quality verdict becomes one quality_scores row per check in its evidence, no more."""
    verdicts = raw(seeded, "SELECT count() FROM detections FINAL WHERE detector = 'quality'")[0][0]
    per_metric = dict(raw(seeded, "SELECT metric, count() FROM quality_scores FINAL GROUP BY metric"))
    assert verdicts > 0 and set(per_metric.values()) == {verdicts}
    assert run(seeded, ("quality", "Answers scored"))[0]["answers"] == verdicts


def test_quality_table_shows_the_worse_prompt_versions_refusals(seeded) -> None:
    rows = run(seeded, ("quality", "Quality by app, model and prompt version"))
    raw_rates = dict(((a, m, v), r) for a, m, v, r in raw(
        seeded, "SELECT service_name, request_model, prompt_version, avg(flagged) FROM quality_scores FINAL "
                "WHERE metric = 'refusal' GROUP BY 1, 2, 3"))
    assert {(r["app"], r["model"], r["version"]): r["refusal_rate"] for r in rows} == pytest.approx(raw_rates)
    support = {r["version"]: r["refusal_rate"] for r in rows if (r["app"], r["model"]) == ("support-bot", "gpt-4o-mini")}
    assert support["v1"] > 2 * support["v2"]  # the seeded worse version stands out
    assert all(r["format_failure_rate"] is None for r in rows)  # no call declared an output format


def test_what_changed_shows_exactly_the_two_compared_versions_oldest_first(seeded) -> None:
    rows = run(seeded, ("prompt-versions", "What changed: template and settings of A and B"))
    expected = raw(seeded, "SELECT version, template FROM prompt_versions FINAL WHERE version IN ('v1', 'v3') "
                           "ORDER BY committed_at")
    assert [(r["version"], r["template"]) for r in rows] == [tuple(e) for e in expected]
    assert {r["version"] for r in rows} == {"v1", "v3"}
