"""A self-contained HTML report of the Grafana dashboards, for people without Grafana.

For each dashboard in ``dashboards/*.json``, each panel's SQL is expanded exactly as Grafana would
(:func:`dashboards.queries.expand`) for one time range, run on ClickHouse and rendered: time
series as inline SVG line charts, stats as big numbers, bar-like panels as SVG bars, the rest as
HTML tables. No scripts, no external CSS, fonts or images: one file that opens anywhere, and a
Content-Security-Policy that forbids fetching anything should a value ever look like a URL.
"""
from __future__ import annotations

import datetime as dt
import html
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from dashboards import queries

PALETTE = ("#3274d9", "#e0752d", "#56a64b", "#c4162a", "#8f3bb8", "#f2cc0c", "#1f9aa8", "#b877d9", "#705da0", "#6e6e6e")
MAX_SERIES = 10
MAX_TABLE_ROWS = 200
NICE_INTERVALS_S = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


# -- time range -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeRange:
    """A report's time range (timezone-aware, UTC)."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("the time range must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty time range: {self.start.isoformat()} .. {self.end.isoformat()}")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def interval_s(self) -> int:
        """Grafana-like ``$__interval``: about 200 points per series, rounded to a nice step."""
        wanted = self.seconds / 200
        return next((s for s in NICE_INTERVALS_S if s >= wanted), NICE_INTERVALS_S[-1])


_SINCE = re.compile(r"(\d+(?:\.\d+)?)\s*(m|h|d|w)")
_SINCE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> dt.timedelta:
    """``"24h"`` -> 24 hours; units m, h, d, w."""
    m = _SINCE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"--since {text!r}: use a number and a unit, e.g. 30m, 24h, 7d, 2w")
    return dt.timedelta(**{_SINCE_UNITS[m.group(2)]: float(m.group(1))})


def parse_time(text: str) -> dt.datetime:
    """An ISO-8601 date or datetime; without a zone it is UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date/time (e.g. 2024-05-01T12:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def time_range(since: str | None = None, start: str | None = None, end: str | None = None,
               now: dt.datetime | None = None) -> TimeRange:
    """The range from ``--from/--to`` or ``--since`` (default 24h), ending now."""
    to = parse_time(end) if end else (now or dt.datetime.now(dt.timezone.utc))
    if start:
        if since:
            raise ValueError("give --since or --from, not both")
        return TimeRange(parse_time(start), to)
    return TimeRange(to - parse_since(since or "24h"), to)


# -- running the panels ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PanelResult:
    """One panel query's outcome."""

    panel: queries.Panel
    kind: str  # timeseries / stat / bars / table
    unit: str
    sql: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    error: str = ""
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class DashboardResult:
    """A dashboard's panels, run."""

    uid: str
    title: str
    variables: dict[str, list[str]]
    panels: list[PanelResult] = field(default_factory=list)


Query = Callable[[str], tuple[Sequence[str], Sequence[Sequence[Any]]]]


def clickhouse_query(client: Any) -> Query:
    """A :data:`Query` over a clickhouse-connect client."""
    def run(sql: str) -> tuple[Sequence[str], Sequence[Sequence[Any]]]:
        result = client.query(sql)
        return result.column_names, result.result_rows
    return run


def _flat(panels: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for panel in panels:
        yield from _flat(panel.get("panels", [])) if panel.get("type") == "row" else [panel]


def _panel_kind(panel_type: str, fmt: str) -> str:
    if panel_type in ("stat", "gauge"):
        return "stat"
    if panel_type in ("barchart", "bargauge", "piechart"):
        return "bars"
    if panel_type == "table":
        return "table"
    return "timeseries" if fmt == "time_series" or panel_type == "timeseries" else "table"


def resolve_variables(dashboard: Mapping[str, Any], tr: TimeRange, query: Query,
                      overrides: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Each variable's values as Grafana's default "All"/first selection would pick them, in order."""
    values: dict[str, list[str]] = {}
    for var in queries.iter_variables(dashboard):
        if var.name in overrides:
            values[var.name] = list(overrides[var.name])
            continue
        _, rows = query(queries.expand(var.sql, tr.start, tr.end, values, tr.interval_s))
        options = [str(r[0]) for r in rows]
        values[var.name] = options if var.multi else options[:1]
    return values


def run_dashboard(dashboard: Mapping[str, Any], tr: TimeRange, query: Query,
                  overrides: Mapping[str, list[str]] | None = None,
                  on_panel: Callable[[PanelResult], None] = lambda r: None) -> DashboardResult:
    """Run every panel of one dashboard; a failing query is recorded, not raised."""
    variables = resolve_variables(dashboard, tr, query, overrides or {})
    meta = {p.get("title"): p for p in _flat(dashboard.get("panels", []))}
    result = DashboardResult(dashboard["uid"], dashboard.get("title", dashboard["uid"]), variables)
    for panel in queries.iter_panels(dashboard):
        spec = meta.get(panel.title, {})
        unit = (spec.get("fieldConfig", {}).get("defaults", {}) or {}).get("unit", "") or ""
        kind = _panel_kind(spec.get("type", ""), panel.format)
        started = time.perf_counter()
        sql = ""
        try:
            sql = queries.expand(panel.sql, tr.start, tr.end, variables, tr.interval_s)
            columns, rows = query(sql)
            outcome = PanelResult(panel, kind, unit, sql, tuple(columns), tuple(map(tuple, rows)),
                                  elapsed_s=time.perf_counter() - started)
        except Exception as exc:  # one bad panel must not lose the rest of the report
            outcome = PanelResult(panel, kind, unit, sql or panel.sql, error=f"{type(exc).__name__}: {exc}",
                                  elapsed_s=time.perf_counter() - started)
        result.panels.append(outcome)
        on_panel(outcome)
    return result


# -- formatting values ----------------------------------------------------------------------------

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def _si(value: float, decimals: int = 1) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.{decimals}f}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.{max(decimals, 2)}g}" if abs(value) < 1 else f"{value:.{decimals}f}"


def format_value(value: Any, unit: str = "") -> str:
    """A value as Grafana would show it for the panel's unit (the common units)."""
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if not _is_number(value):
        return str(value)
    v = float(value)
    if unit == "percentunit":
        return f"{v * 100:.2f}%"
    if unit == "percent":
        return f"{v:.2f}%"
    if unit == "ms":
        return f"{v / 1000:.2f} s" if abs(v) >= 1000 else f"{v:.0f} ms"
    if unit == "s":
        return f"{v / 60:.1f} min" if abs(v) >= 120 else f"{v:.2f} s"
    if unit in ("currencyUSD", "USD"):
        return f"${v:,.2f}" if abs(v) >= 0.1 or v == 0 else f"${v:.4f}"
    if unit == "bytes":  # Grafana's "bytes(IEC)": powers of 1024
        return _byte_size(v, 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"))
    if unit == "decbytes":  # "bytes(SI)": powers of 1000
        return _byte_size(v, 1000, ("B", "kB", "MB", "GB", "TB", "PB"))
    return _si(v)


def _byte_size(v: float, base: int, units: tuple[str, ...]) -> str:
    """``1500`` -> ``1.46 KiB`` (base 1024) or ``1.50 kB`` (base 1000); whole bytes below ``base``."""
    step = 0
    while abs(v) >= base and step < len(units) - 1:
        v /= base
        step += 1
    return f"{v:.0f} B" if step == 0 else f"{v:.2f} {units[step]}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


# -- charts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Series:
    """One line: a name and (epoch seconds, value or None) points, sorted by time."""

    name: str
    points: tuple[tuple[float, float | None], ...]


def _epoch(v: Any) -> float | None:
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).timestamp()
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=dt.timezone.utc).timestamp()
    return None


def to_series(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Series]:
    """Grafana's long-to-wide rule: the time column, numeric columns are values, strings are labels."""
    if not rows:
        return []
    time_idx = next((i for i in range(len(columns)) if any(_epoch(r[i]) is not None for r in rows)), None)
    if time_idx is None:
        return []
    others = [i for i in range(len(columns)) if i != time_idx]
    value_idx = [i for i in others if all(r[i] is None or _is_number(r[i]) for r in rows)
                 and any(_is_number(r[i]) for r in rows)]
    label_idx = [i for i in others if i not in value_idx]
    lines: dict[str, dict[float, float | None]] = {}
    for row in rows:
        t = _epoch(row[time_idx])
        if t is None:
            continue
        labels = ", ".join(str(row[i]) for i in label_idx)
        for i in value_idx:
            name = " ".join(x for x in (labels, columns[i] if len(value_idx) > 1 or not labels else "") if x)
            lines.setdefault(name, {})[t] = float(row[i]) if _is_number(row[i]) else None
    return [Series(name, tuple(sorted(points.items()))) for name, points in lines.items()]


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= step * m)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _time_label(t: float, span_s: float) -> str:
    moment = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    return moment.strftime("%H:%M" if span_s <= 86400 else "%m-%d %H:%M" if span_s <= 7 * 86400 else "%Y-%m-%d")


def line_chart(series: Sequence[Series], tr: TimeRange, unit: str, title: str,
               width: int = 640, height: int = 240) -> str:
    """An inline SVG line chart (null values break the line), with axes and a legend."""
    left, right, top, bottom = 64, 12, 10, 26
    pw, ph = width - left - right, height - top - bottom
    shown = list(series)[:MAX_SERIES]
    values = [v for s in shown for _, v in s.points if v is not None]
    lo, hi = min([0.0, *values]), max([0.0, *values]) if values else 1.0
    ticks = _nice_ticks(lo, hi if hi > lo else lo + 1)
    y_lo, y_hi = ticks[0], ticks[-1]
    x0, x1 = tr.start.timestamp(), tr.end.timestamp()

    def x(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * pw

    def y(v: float) -> float:
        return top + ph - (v - y_lo) / (y_hi - y_lo) * ph

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(title)}"><title>{_e(title)}</title>']
    for v in ticks:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="ylab">{_e(format_value(v, unit))}</text>')
    for i in range(6):
        t = x0 + (x1 - x0) * i / 5
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        parts.append(f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="{anchor}" class="xlab">'
                     f'{_e(_time_label(t, x1 - x0))}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" class="axis"/>'
                 f'<line x1="{left}" x2="{width - right}" y1="{top + ph}" y2="{top + ph}" class="axis"/>')
    for n, s in enumerate(shown):
        color = PALETTE[n % len(PALETTE)]
        segment: list[str] = []
        for t, v in list(s.points) + [(math.inf, None)]:
            if v is not None and x0 <= t <= x1:
                segment.append(f"{x(t):.1f},{y(v):.1f}")
                continue
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif segment:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{" ".join(segment)}">'
                             f'<title>{_e(s.name)}</title></polyline>')
            segment = []
    if not values:
        parts.append(f'<text x="{left + pw / 2}" y="{top + ph / 2}" class="nodata">No data in this range</text>')
    parts.append("</svg>")
    legend = "".join(f'<span class="key"><i style="background:{PALETTE[n % len(PALETTE)]}"></i>{_e(s.name)}</span>'
                     for n, s in enumerate(shown))
    more = f'<span class="muted">+{len(series) - MAX_SERIES} more series</span>' if len(series) > MAX_SERIES else ""
    return "".join(parts) + f'<div class="legend">{legend}{more}</div>'


def bar_chart(labels: Sequence[str], values: Sequence[float], unit: str, title: str, width: int = 640) -> str:
    """Horizontal SVG bars, one per label (at most 20)."""
    labels, values = list(labels)[:20], list(values)[:20]
    row, label_w, value_w = 22, 190, 90
    height = row * len(values) + 8
    top = max([0.0, *values]) or 1.0
    bar_w = width - label_w - value_w
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(title)}"><title>{_e(title)}</title>']
    for i, (label, value) in enumerate(zip(labels, values)):
        yy = 4 + i * row
        w = max(value, 0) / top * bar_w
        parts.append(f'<text x="{label_w - 6}" y="{yy + 15}" class="ylab">{_e(label[:32])}</text>'
                     f'<rect x="{label_w}" y="{yy + 3}" width="{w:.1f}" height="{row - 6}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{yy + 15}" class="val">{_e(format_value(value, unit))}</text>')
    return "".join(parts) + "</svg>"


# -- panels and page ------------------------------------------------------------------------------

def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], unit: str) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if _is_number(v) else ""}">{_e(_cell(v, unit))}</td>' for v in row) + "</tr>"
        for row in rows[:MAX_TABLE_ROWS])
    more = (f'<p class="muted">showing {MAX_TABLE_ROWS} of {len(rows)} rows</p>' if len(rows) > MAX_TABLE_ROWS else "")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'


def _cell(value: Any, unit: str) -> str:
    text = format_value(value, unit if _is_number(value) else "")
    return text if len(text) <= 300 else text[:300] + "…"


def _stat(columns: Sequence[str], rows: Sequence[Sequence[Any]], unit: str) -> str:
    """Big numbers: the last non-null value of each numeric column; one per row when rows carry a label."""
    numeric = [i for i in range(len(columns)) if any(_is_number(r[i]) for r in rows)]
    labels = [i for i in range(len(columns)) if i not in numeric and not any(_epoch(r[i]) for r in rows)]
    items: list[tuple[str, Any]] = []
    if labels and len(rows) > 1:
        for r in rows[:12]:
            items += [(" ".join(str(r[j]) for j in labels), r[i]) for i in numeric[:1]]
    else:
        for i in numeric:
            last = next((r[i] for r in reversed(rows) if r[i] is not None), None)
            items.append((columns[i] if len(numeric) > 1 else "", last))
    return '<div class="stats">' + "".join(
        f'<div class="stat"><div class="big">{_e(format_value(v, unit))}</div>'
        f'<div class="muted">{_e(label)}</div></div>' for label, v in items) + "</div>"


def render_panel(result: PanelResult, tr: TimeRange) -> str:
    """One panel's HTML: chart, big number or table; the expanded SQL folds underneath."""
    p = result.panel
    if result.error:
        body = f'<div class="error">query failed: {_e(result.error)}</div>'
    elif result.kind == "timeseries" and (not result.rows or to_series(result.columns, result.rows)):
        # like Grafana, an empty time series still draws its (empty) axes
        body = line_chart(to_series(result.columns, result.rows), tr, result.unit, p.title)
    elif not result.rows:
        body = '<p class="muted">No data in this range</p>'
    elif result.kind == "stat":
        body = _stat(result.columns, result.rows, result.unit)
    elif result.kind == "bars" and len(result.columns) >= 2 and all(_is_number(r[-1]) for r in result.rows):
        body = bar_chart([" ".join(str(v) for v in r[:-1]) for r in result.rows],
                         [float(r[-1]) for r in result.rows], result.unit, p.title)
    else:
        body = _table(result.columns, result.rows, result.unit)
    wide = " wide" if result.kind == "table" and not result.error else ""
    return (f'<section class="panel{wide}" data-kind="{_e(result.kind)}"><h3>{_e(p.title)}</h3>{body}'
            f'<details><summary>SQL · {len(result.rows)} rows · {result.elapsed_s * 1000:.0f} ms</summary>'
            f'<pre>{_e(result.sql)}</pre></details></section>')


CSS = """
:root{color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f8;color:#1f2328}
header{background:#1f2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c7cbd6}nav{padding:10px 28px;background:#fff;border-bottom:1px solid #dde}
nav a{margin-right:16px;color:#3274d9;text-decoration:none}main{padding:8px 28px 40px}
h2{margin:28px 0 4px;font-size:19px}.vars{color:#555;margin:0 0 10px;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px;align-items:start}
.panel{background:#fff;border:1px solid #dde;border-radius:6px;padding:12px 14px;min-width:0}
.panel.wide{grid-column:1/-1}.panel h3{margin:0 0 8px;font-size:14px}
svg.chart{width:100%;height:auto;display:block}
svg .nodata{font-size:14px;fill:#7a808c;text-anchor:middle}
svg .grid{stroke:#e6e8ee;stroke-width:1}svg .axis{stroke:#9aa0ad;stroke-width:1}
svg text{font-size:11px;fill:#5b6270}svg .ylab{text-anchor:end}svg .val{fill:#1f2328}
.legend{font-size:12px;margin-top:4px}.key{margin-right:12px;white-space:nowrap}
.key i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px;vertical-align:-1px}
.stats{display:flex;flex-wrap:wrap;gap:18px}.stat{min-width:120px}
.big{font-size:36px;font-weight:600;color:#3274d9;line-height:1.1}
.scroll{overflow-x:auto;max-height:480px;overflow-y:auto}
table{border-collapse:collapse;font-size:12px;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #eceef2;
text-align:left;vertical-align:top;max-width:420px;overflow-wrap:anywhere}th{background:#f7f8fa;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#7a808c;font-size:12px}.error{background:#fdecee;color:#a1111f;padding:8px;border-radius:4px}
details{margin-top:8px}summary{cursor:pointer;color:#7a808c;font-size:12px}
pre{white-space:pre-wrap;font-size:11px;background:#f7f8fa;padding:8px;border-radius:4px;overflow-wrap:anywhere}
"""

# Nothing may be fetched: styles are inline, images are inline SVG.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_html(dashboards: Sequence[DashboardResult], tr: TimeRange, source: str = "",
                generated: dt.datetime | None = None) -> str:
    """The whole report page."""
    generated = generated or dt.datetime.now(dt.timezone.utc)
    fmt = "%Y-%m-%d %H:%M UTC"
    span = f"{tr.start.astimezone(dt.timezone.utc):{fmt}} → {tr.end.astimezone(dt.timezone.utc):{fmt}}"
    failed = sum(bool(p.error) for d in dashboards for p in d.panels)
    nav = "".join(f'<a href="#{_e(d.uid)}">{_e(d.title)}</a>' for d in dashboards)
    sections = []
    for d in dashboards:
        chosen = "; ".join(f"{k} = {', '.join(v) if v else '(none)'}" for k, v in d.variables.items())
        sections.append(
            f'<h2 id="{_e(d.uid)}">{_e(d.title)}</h2>'
            + (f'<p class="vars">{_e(chosen)}</p>' if chosen else "")
            + '<div class="grid">' + "".join(render_panel(p, tr) for p in d.panels) + "</div>")
    summary = f"{span} · interval {tr.interval_s}s · generated {generated:{fmt}}"
    if source:
        summary += f" · {source}"
    if failed:
        summary += f" · {failed} panel(s) failed"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>llmwatch report · {_e(span)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>llmwatch report</h1><p>{_e(summary)}</p></header><nav>{nav}</nav>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )
