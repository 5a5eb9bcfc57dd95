"""The SQL behind each dashboard panel, and how Grafana turns it into what ClickHouse runs.

Grafana sends a panel's SQL through two steps, reproduced here so tests and reports run the exact
query a dashboard would:

1. the frontend (``CHDatasource.applyTemplateVariables``): ``$__conditionalAll(cond, $var)``, then
   Grafana's template interpolation (``$var``, ``${var}``, ``${var:format}``, ``[[var]]`` and the
   built-ins ``$__from``/``$__to``/``$__interval``...). Without a format, a multi-value variable
   becomes ``'a','b'`` (the plugin's own formatter, no escaping); with one, Grafana's formatter.
2. the backend (``pkg/macros/macros.go`` via sqlds): ``$__name`` or ``$__name(args)`` macros,
   args split on commas and trimmed.

>>> import datetime as dt
>>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
>>> expand("WHERE $__timeFilter(ts) AND app IN (${app:singlequote})", t0, t0 + dt.timedelta(hours=1),
...        {"app": ["a", "b'c"]}, 60)
"WHERE ts >= toDateTime(1704067200) AND ts <= toDateTime(1704070800) AND app IN ('a','b\\\\'c')"
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

DASHBOARD_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Panel:
    """One query of one panel: what it runs and what it must return."""

    dashboard_uid: str
    title: str
    sql: str
    format: str  # "time_series" | "table"
    expected_columns: tuple[str, ...]


@dataclass(frozen=True)
class Variable:
    """A dashboard query variable (its SQL runs through :func:`expand` too)."""

    dashboard_uid: str
    name: str
    sql: str
    multi: bool


# The plugin's query format enum (src/types: TIMESERIES=0, TABLE=1, LOGS=2, TRACE=3, AUTO=4).
FORMATS = {0: "time_series", 1: "table", 2: "logs", 3: "traces", 4: "auto"}


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[dict[str, Any]]:
    """Every dashboard JSON in ``directory``, by file name."""
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[Panel]:
    """Each ClickHouse query of each panel (rows' nested panels included), in layout order."""
    uid = dashboard["uid"]
    for panel in _flat_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") != "grafana-clickhouse-datasource":
                continue
            # expectedColumns: llmwatch's own key on the query model (Grafana keeps unknown keys)
            yield Panel(uid, panel["title"], target["rawSql"], FORMATS[target.get("format", 1)],
                        tuple(target.get("expectedColumns", ())))


def iter_variables(dashboard: Mapping[str, Any]) -> Iterator[Variable]:
    """The dashboard's query variables."""
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]
            sql = query["rawSql"] if isinstance(query, dict) else query
            yield Variable(dashboard["uid"], var["name"], sql, bool(var.get("multi")))


def _flat_panels(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        if panel.get("type") == "row":
            yield from _flat_panels(panel.get("panels", []))
        else:
            yield panel


# --------------------------------------------------------------------------- step 1: frontend

_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _plugin_default(value: str | list[str]) -> str:
    """The ClickHouse plugin's own formatter, used when the variable names no format."""
    return "'" + "','".join(value) + "'" if isinstance(value, list) else value


def _singlequote(value: str | list[str]) -> str:
    q = lambda v: "'" + v.replace("'", "\\'") + "'"  # noqa: E731
    return ",".join(map(q, value)) if isinstance(value, list) else q(value)


def _doublequote(value: str | list[str]) -> str:
    q = lambda v: '"' + v.replace('"', '\\"') + '"'  # noqa: E731
    return ",".join(map(q, value)) if isinstance(value, list) else q(value)


def _sqlstring(value: str | list[str]) -> str:
    q = lambda v: "'" + v.replace("'", "''") + "'"  # noqa: E731
    return ",".join(map(q, value)) if isinstance(value, list) else q(value)


def _joined(sep: str) -> Callable[[str | list[str]], str]:
    return lambda value: sep.join(value) if isinstance(value, list) else value


def _regex(value: str | list[str]) -> str:
    values = value if isinstance(value, list) else [value]
    escaped = [re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m.group(0), v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


# Grafana's variable formats (public/app/features/templating/formatRegistry.ts).
_FORMATTERS: dict[str, Callable[[str | list[str]], str]] = {
    "singlequote": _singlequote,
    "doublequote": _doublequote,
    "sqlstring": _sqlstring,
    "csv": _joined(","),
    "pipe": _joined("|"),
    "raw": _joined(","),
    "text": _joined(" + "),
    "json": lambda v: json.dumps(v, separators=(",", ":")),
    "glob": lambda v: "{" + ",".join(v) + "}" if isinstance(v, list) and len(v) > 1 else _joined(",")(v),
    "regex": _regex,
    "percentencode": lambda v: quote("{" + ",".join(v) + "}" if isinstance(v, list) else v, safe=""),
    "queryparam": lambda v: "&".join(f"var-={quote(x)}" for x in (v if isinstance(v, list) else [v])),
}


def _interval_text(seconds: int) -> str:
    """Grafana's ``$__interval`` text: the largest whole unit (rangeutil.secondsToHms)."""
    for unit, size in (("y", 31536000), ("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _builtins(time_from: dt.datetime, time_to: dt.datetime, interval_s: int) -> dict[str, str]:
    from_ms, to_ms = int(time_from.timestamp() * 1000), int(time_to.timestamp() * 1000)
    return {
        "__from": str(from_ms),
        "__to": str(to_ms),
        "__interval": _interval_text(interval_s),
        "__interval_ms": str(interval_s * 1000),
        "__range_ms": str(to_ms - from_ms),
        "__range_s": str((to_ms - from_ms) // 1000),
        "__range": _interval_text((to_ms - from_ms) // 1000),
    }


def _conditional_all(sql: str, variables: Mapping[str, list[str]]) -> str:
    """``$__conditionalAll(condition, $var)``: ``1=1`` when the variable is All (``$__all``) or empty."""
    macro = "$__conditionalAll("
    index = sql.rfind(macro)
    while index != -1:
        args, end = _macro_args(sql, index + len(macro) - 1)
        if len(args) != 2:
            return sql
        name = re.search(r"(?<=\$\{)\w+(?=[}:])|(?<=\$)\w+", args[1].strip())
        phrase = args[0]
        if name and variables.get(name.group(0)) in ([], [""], ["$__all"]):
            phrase = "1=1"
        sql = sql[:index] + phrase + sql[end:]
        index = sql.rfind(macro)
    return sql


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """Arguments of a call whose ``(`` is at ``open_paren`` (nested parentheses kept), and its end."""
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    return [], len(sql)


def interpolate(sql: str, variables: Mapping[str, list[str]], builtins: Mapping[str, str] | None = None) -> str:
    """Grafana's template interpolation; unknown names are left as they are (macros stay for step 2)."""
    builtins = builtins or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in variables:
            # one value reads as a single-value variable (a string); more as a multi-value array
            values = list(variables[name])
            value: str | list[str] = values[0] if len(values) == 1 else values
        elif name in builtins:
            value = builtins[name]
        else:
            return match.group(0)
        if fmt is None:
            return _plugin_default(value)
        if fmt not in _FORMATTERS:
            raise ValueError(f"unknown variable format {fmt!r} in {match.group(0)!r}")
        return _FORMATTERS[fmt](value)

    return _VARIABLE.sub(replace, sql)


# --------------------------------------------------------------------------- step 2: backend macros

def _to_datetime(t: dt.datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _to_datetime64(t: dt.datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _to_date(t: dt.datetime) -> str:
    return f"toDate('{t.astimezone(dt.timezone.utc):%Y-%m-%d}')"


def _args(n: int, name: str, args: list[str]) -> list[str]:
    if len(args) != n:
        raise ValueError(f"$__{name}: expected {n} argument(s), received {len(args)}")
    return args


def _macros(time_from: dt.datetime, time_to: dt.datetime, interval_s: int) -> dict[str, Callable[[list[str]], str]]:
    seconds = max(interval_s, 1)
    return {
        "fromTime": lambda a: _to_datetime(time_from),
        "toTime": lambda a: _to_datetime(time_to),
        "fromTime_ms": lambda a: _to_datetime64(time_from),
        "toTime_ms": lambda a: _to_datetime64(time_to),
        "timeFilter": lambda a: "{0} >= {1} AND {0} <= {2}".format(
            _args(1, "timeFilter", a)[0], _to_datetime(time_from), _to_datetime(time_to)),
        "timeFilter_ms": lambda a: "{0} >= {1} AND {0} <= {2}".format(
            _args(1, "timeFilter_ms", a)[0], _to_datetime64(time_from), _to_datetime64(time_to)),
        "dateFilter": lambda a: "{0} >= {1} AND {0} <= {2}".format(
            _args(1, "dateFilter", a)[0], _to_date(time_from), _to_date(time_to)),
        "dateTimeFilter": lambda a: _date_time_filter(_args(2, "dateTimeFilter", a), time_from, time_to),
        "dt": lambda a: _date_time_filter(_args(2, "dt", a), time_from, time_to),
        "timeInterval": lambda a: f"toStartOfInterval(toDateTime({_args(1, 'timeInterval', a)[0]}), INTERVAL {seconds} second)",
        "timeInterval_ms": lambda a: (f"toStartOfInterval(toDateTime64({_args(1, 'timeInterval_ms', a)[0]}, 3), "
                                      f"INTERVAL {max(interval_s * 1000, 1)} millisecond)"),
        "interval_s": lambda a: str(seconds),
    }


def _date_time_filter(args: list[str], time_from: dt.datetime, time_to: dt.datetime) -> str:
    date_col, time_col = args
    return (f"({date_col} >= {_to_date(time_from)} AND {date_col} <= {_to_date(time_to)}) AND "
            f"({time_col} >= {_to_datetime(time_from)} AND {time_col} <= {_to_datetime(time_to)})")


def expand_macros(sql: str, time_from: dt.datetime, time_to: dt.datetime, interval_s: int) -> str:
    """The backend's macro pass: ``$__name\\b`` optionally followed by ``(args)``."""
    for name, fn in _macros(time_from, time_to, interval_s).items():
        pattern = re.compile(r"\$__" + name + r"\b(?:\((.*?)\))?")
        for match in list(pattern.finditer(sql)):
            args = [a.strip() for a in match.group(1).split(",")] if match.group(1) is not None else []
            sql = sql.replace(match.group(0), fn(args))
    return sql


def expand(sql: str, time_from: dt.datetime, time_to: dt.datetime, variables: Mapping[str, list[str]],
           interval_s: int) -> str:
    """The SQL ClickHouse receives for ``sql`` at this time range, variable selection and interval."""
    if time_from.tzinfo is None or time_to.tzinfo is None:
        raise ValueError("time_from and time_to must be timezone-aware")
    sql = _conditional_all(sql, variables)
    sql = interpolate(sql, variables, _builtins(time_from, time_to, interval_s))
    return expand_macros(sql, time_from, time_to, interval_s)
