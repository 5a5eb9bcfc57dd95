"""Every panel of every dashboard runs on seeded ClickHouse and returns the columns it reads."""
from __future__ import annotations

import pytest

from dashboards.queries import Panel, Variable, expand, iter_panels, iter_variables, load_dashboards
from tests.dashboards.conftest import ALL

DASHBOARDS = load_dashboards()
PANELS = [p for d in DASHBOARDS for p in iter_panels(d)]
VARIABLES = [v for d in DASHBOARDS for v in iter_variables(d)]


def test_six_dashboards_with_panels() -> None:
    assert {d["uid"] for d in DASHBOARDS} == {
        "llmwatch-overview", "llmwatch-safety", "llmwatch-quality", "llmwatch-drift",
        "llmwatch-cost-latency", "llmwatch-prompt-versions"}
    assert all(p.expected_columns for p in PANELS)


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: f"{p.dashboard_uid}:{p.title}")
def test_panel_returns_expected_columns(seeded, panel: Panel) -> None:
    client, summary = seeded
    sql = expand(panel.sql, summary.start, summary.end, ALL, 300)
    assert "$" not in sql, sql
    result = client.query(sql)
    assert tuple(result.column_names) == panel.expected_columns
    assert result.result_rows, f"{panel.title}: no rows"


@pytest.mark.parametrize("panel", [p for p in PANELS if p.dashboard_uid != "llmwatch-prompt-versions"][:6],
                         ids=lambda p: p.title)
def test_panel_with_one_app_selected(seeded, panel: Panel) -> None:
    client, summary = seeded
    sql = expand(panel.sql, summary.start, summary.end, {**ALL, "app": ["rag-search"]}, 60)
    assert client.query(sql).result_rows


@pytest.mark.parametrize("variable", VARIABLES, ids=lambda v: f"{v.dashboard_uid}:{v.name}")
def test_variable_query_lists_values(seeded, variable: Variable) -> None:
    client, summary = seeded
    rows = client.query(expand(variable.sql, summary.start, summary.end, ALL, 60)).result_rows
    assert rows and all(len(r) == 1 and r[0] for r in rows)


def test_time_series_panels_have_a_time_column() -> None:
    for p in PANELS:
        if p.format == "time_series":
            assert p.expected_columns[0] == "time", p.title


def test_panels_read_rollups_except_examples_and_drift() -> None:
    raw_ok = ("drift_reports", "Example flagged prompts", "Unsupported answers with evidence", "Flagged answers with their checks")
    for p in PANELS:
        if not any(k in p.sql or k == p.title for k in raw_ok):
            assert "FROM llm_calls " not in p.sql and "FROM detections\n" not in p.sql, p.title
