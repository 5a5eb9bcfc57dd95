"""Generate the llmwatch Grafana dashboards (``dashboards/*.json``) from the panel specs in :mod:`.panels`.

    .venv/bin/python -m dashboards.build          # rewrite the JSON files
    .venv/bin/python -m dashboards.build --check  # exit 1 if a file is stale

Every query targets the provisioned ClickHouse datasource (uid ``llmwatch-clickhouse``) in SQL mode;
each target carries ``expectedColumns``, the columns the panel's visualisation reads, which the
tests check against a live run of the query.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dashboards.panels import DASHBOARDS, DashboardSpec, PanelSpec, VariableSpec

DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "llmwatch-clickhouse"}
FORMAT_CODE = {"time_series": 0, "table": 1}
OUT_DIR = Path(__file__).resolve().parent
SCHEMA_VERSION = 39  # Grafana 11.x dashboard schema


def target(sql: str, fmt: str, expected: Sequence[str], ref_id: str = "A") -> dict[str, Any]:
    """A ClickHouse SQL-editor query."""
    return {
        "refId": ref_id,
        "datasource": DATASOURCE,
        "editorType": "sql",
        "format": FORMAT_CODE[fmt],
        "queryType": "timeseries" if fmt == "time_series" else "table",
        "rawSql": sql.strip(),
        "expectedColumns": list(expected),
    }


def panel(spec: PanelSpec, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    """A panel of one query, with a few sensible visual defaults per type."""
    defaults: dict[str, Any] = {"unit": spec.unit} if spec.unit else {}
    if spec.decimals is not None:
        defaults["decimals"] = spec.decimals
    out: dict[str, Any] = {
        "id": panel_id,
        "type": spec.type,
        "title": spec.title,
        "description": spec.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": [target(spec.sql, spec.format, spec.columns)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": dict(spec.options),
    }
    if spec.interval:
        out["interval"] = spec.interval
    return out


def variable(spec: VariableSpec) -> dict[str, Any]:
    """A ClickHouse query variable; multi-value ones default to All."""
    current = ({"selected": True, "text": ["All"], "value": ["$__all"]} if spec.multi
               else {"selected": True, "text": spec.default, "value": spec.default})
    return {
        "name": spec.name,
        "label": spec.label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": spec.sql.strip(),
        "refresh": 2,  # on time range change: values follow the data
        "sort": 1,
        "multi": spec.multi,
        "includeAll": spec.multi,
        "current": current,
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }


def layout(panels: Sequence[PanelSpec]) -> list[dict[str, int]]:
    """Left-to-right, wrapping at Grafana's 24 columns."""
    grids, x, y, row_h = [], 0, 0, 0
    for spec in panels:
        if x + spec.width > 24:
            x, y, row_h = 0, y + row_h, 0
        grids.append({"x": x, "y": y, "w": spec.width, "h": spec.height})
        x, row_h = x + spec.width, max(row_h, spec.height)
    return grids


def dashboard(spec: DashboardSpec) -> dict[str, Any]:
    """The dashboard JSON Grafana's file provider loads."""
    return {
        "uid": spec.uid,
        "title": spec.title,
        "description": spec.description,
        "tags": ["llmwatch", *spec.tags],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": []},
        "links": [{"title": "llmwatch", "type": "dashboards", "tags": ["llmwatch"], "asDropdown": True,
                   "icon": "external link", "includeVars": True, "keepTime": True, "targetBlank": False,
                   "tooltip": "", "url": ""}],
        "templating": {"list": [variable(v) for v in spec.variables]},
        "panels": [panel(p, i + 1, g) for i, (p, g) in enumerate(zip(spec.panels, layout(spec.panels)))],
    }


def render(spec: DashboardSpec) -> str:
    return json.dumps(dashboard(spec), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a JSON file differs from the specs")
    args = parser.parse_args(argv)
    stale = []
    for spec in DASHBOARDS:
        path = OUT_DIR / f"{spec.file}.json"
        text = render(spec)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale dashboards (run python -m dashboards.build): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
