"""One parameterised ClickHouse query per rule kind -> one :class:`Observation` per key.

Values travel as ``{name:Type}`` query parameters. The only identifiers formatted into SQL are
column names, and those are re-checked here against the per-table allow-lists in ``rules``.
Keys without enough events in the window produce no observation (the engine treats an absent
key as "condition not met", which resolves a firing alert).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from clickhouse_connect.driver.client import Client

from streams.alerting.rules import (
    CALL_COLUMNS,
    DETECTION_COLUMNS,
    DRIFT_COLUMNS,
    KINDS,
    Rule,
)


@dataclass(frozen=True)
class Observation:
    """What one rule saw for one key (e.g. one service/model/prompt version) at one time."""

    rule: Rule
    key: dict[str, str]
    value: float
    threshold: float
    firing: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One human line: ``injections: flagged rate 12.0% > 5.0% (service_name=chat, ...)``."""
        where = ", ".join(f"{k}={v}" for k, v in self.key.items()) or "all"
        return f"{self.rule.name}: {_describe(self)} ({where})"


def evaluate(rule: Rule, client: Client, now: float) -> list[Observation]:
    """Run the rule's query for the window ending at ``now`` (unix seconds)."""
    return _EVALUATORS[rule.kind](rule, client, now)


def _columns(rule: Rule, allowed: tuple[str, ...]) -> str:
    for column in (*rule.group_by, *rule.match):
        if column not in allowed:  # load-time validation makes this unreachable; keep SQL safe anyway
            raise ValueError(f"rule {rule.name!r}: column {column!r} is not allowed here")
    return ", ".join(rule.group_by)


def _match(rule: Rule) -> tuple[str, dict[str, Any]]:
    """`` AND column = {match_i:String}`` for each ``match`` entry, and its parameters."""
    sql, params = "", {}
    for i, (column, value) in enumerate(sorted(rule.match.items())):
        sql += f" AND {column} = {{match_{i}:String}}"
        params[f"match_{i}"] = value
    return sql, params


def _window(rule: Rule, now: float, column: str = "timestamp") -> tuple[str, dict[str, Any]]:
    """The window filter ``(now - window, now]`` plus the ``match`` filters, and their parameters."""
    match_sql, params = _match(rule)
    sql = (f"{column} > toDateTime64({{start:Float64}}, 3, 'UTC') "
           f"AND {column} <= toDateTime64({{end:Float64}}, 3, 'UTC')") + match_sql
    return sql, params | {"start": now - rule.window_s, "end": now}


def _grouped(rule: Rule, client: Client, sql: str, params: dict[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Rows as ``(key, metrics)``: the first ``len(group_by)`` columns form the key."""
    result = client.query(sql, parameters=params)
    width = len(rule.group_by)
    out = []
    for row in result.result_rows:
        key = {column: str(value) for column, value in zip(rule.group_by, row[:width])}
        out.append((key, dict(zip(result.column_names[width:], row[width:]))))
    return out


def _share_flagged(rule: Rule, client: Client, now: float, table: str, column: str, value: str) -> list[Observation]:
    """Flagged share per key of ``table`` rows where ``column`` = ``value`` (a detector, a quality check)."""
    cols = _columns(rule, DETECTION_COLUMNS)
    where, params = _window(rule, now)
    sql = (f"SELECT {cols}, count() AS n, sum(flagged) AS n_flagged FROM {table} FINAL "
           f"WHERE {column} = {{which:String}} AND {where} "
           f"GROUP BY {cols} HAVING n >= {{min_events:UInt64}} ORDER BY {cols}")
    params |= {"which": value, "min_events": rule.min_events}
    out = []
    for key, m in _grouped(rule, client, sql, params):
        rate = m["n_flagged"] / m["n"]
        out.append(Observation(rule, key, rate, rule.threshold, rate > rule.threshold,
                               {"events": m["n"], "flagged": int(m["n_flagged"]), column: value}))
    return out


def _flagged_rate(rule: Rule, client: Client, now: float) -> list[Observation]:
    return _share_flagged(rule, client, now, "detections", "detector", rule.detector)


def _quality_rate(rule: Rule, client: Client, now: float) -> list[Observation]:
    return _share_flagged(rule, client, now, "quality_scores", "metric", rule.metric)


def _drift(rule: Rule, client: Client, now: float) -> list[Observation]:
    cols = _columns(rule, DRIFT_COLUMNS)
    where, params = _window(rule, now, column="window_end")
    if rule.signals:
        where += " AND has({signals:Array(String)}, signal)"
        params["signals"] = list(rule.signals)
    sql = (f"SELECT {cols}, count() AS reports, countIf(drifted = 1) AS n_drifted, "
           f"arraySort(groupUniqArrayIf(signal, drifted = 1)) AS drifted_signals, "
           f"minIf(p_value, drifted = 1) AS min_p_value FROM drift_reports FINAL "
           f"WHERE {where} GROUP BY {cols} ORDER BY {cols}")
    out = []
    for key, m in _grouped(rule, client, sql, params):
        out.append(Observation(rule, key, float(m["n_drifted"]), 0.0, m["n_drifted"] > 0, {
            "reports": m["reports"], "drifted_signals": list(m["drifted_signals"]),
            "min_p_value": m["min_p_value"] if m["n_drifted"] else None,
        }))
    return out


def _error_rate(rule: Rule, client: Client, now: float) -> list[Observation]:
    cols = _columns(rule, CALL_COLUMNS)
    where, params = _window(rule, now)
    sql = (f"SELECT {cols}, count() AS n, countIf(status = 'error') AS n_errors FROM llm_calls FINAL "
           f"WHERE {where} GROUP BY {cols} HAVING n >= {{min_events:UInt64}} ORDER BY {cols}")
    params["min_events"] = rule.min_events
    out = []
    for key, m in _grouped(rule, client, sql, params):
        value = m["n_errors"] / m["n"]
        out.append(Observation(rule, key, value, rule.threshold, value > rule.threshold,
                               {"events": m["n"], "errors": m["n_errors"]}))
    return out


def _latency_p95(rule: Rule, client: Client, now: float) -> list[Observation]:
    cols = _columns(rule, CALL_COLUMNS)
    where, params = _window(rule, now)
    sql = (f"SELECT {cols}, count() AS n, quantile(0.95)(latency_ms) AS p95 FROM llm_calls FINAL "
           f"WHERE {where} GROUP BY {cols} HAVING n >= {{min_events:UInt64}} ORDER BY {cols}")
    params["min_events"] = rule.min_events
    return [Observation(rule, key, float(m["p95"]), rule.threshold, m["p95"] > rule.threshold, {"events": m["n"]})
            for key, m in _grouped(rule, client, sql, params)]


def _cost_per_hour(rule: Rule, client: Client, now: float) -> list[Observation]:
    cols = _columns(rule, CALL_COLUMNS)
    where, params = _window(rule, now)
    sql = (f"SELECT {cols}, count() AS n, sum(ifNull(cost_usd, 0)) AS cost FROM llm_calls FINAL "
           f"WHERE {where} GROUP BY {cols} ORDER BY {cols}")
    out = []
    for key, m in _grouped(rule, client, sql, params):
        per_hour = float(m["cost"]) * 3600.0 / rule.window_s
        out.append(Observation(rule, key, per_hour, rule.threshold, per_hour > rule.threshold,
                               {"events": m["n"], "window_cost_usd": float(m["cost"]), "window_s": rule.window_s}))
    return out


_ROLLOUT_SQL = """
WITH versions AS (
    SELECT service_name, request_model, prompt_version, min(timestamp) AS first_seen,
           anyLast(prompt_name) AS prompt_name
    FROM llm_calls FINAL
    WHERE timestamp > toDateTime64({{lookback_start:Float64}}, 3, 'UTC') AND {lookback_where}
    GROUP BY service_name, request_model, prompt_version
),
calls AS (
    SELECT service_name, request_model, prompt_version, count() AS n,
           countIf(status = 'error') / count() AS error_rate,
           quantile(0.95)(latency_ms) AS latency_p95,
           avg(cost_usd) AS mean_cost
    FROM llm_calls FINAL
    WHERE {where}
    GROUP BY service_name, request_model, prompt_version
),
flags AS (
    SELECT service_name, request_model, prompt_version, groupArray((detector, n, rate)) AS flagged_rates
    FROM (
        SELECT service_name, request_model, prompt_version, detector, count() AS n, avg(flagged) AS rate
        FROM detections FINAL
        WHERE {where} AND (empty({{detectors:Array(String)}}) OR has({{detectors:Array(String)}}, detector))
        GROUP BY service_name, request_model, prompt_version, detector
    )
    GROUP BY service_name, request_model, prompt_version
),
quality AS (
    SELECT service_name, request_model, prompt_version, groupArray((metric, n, rate)) AS quality_rates
    FROM (
        SELECT service_name, request_model, prompt_version, metric, count() AS n, avg(flagged) AS rate
        FROM quality_scores FINAL
        WHERE {where}
        GROUP BY service_name, request_model, prompt_version, metric
    )
    GROUP BY service_name, request_model, prompt_version
)
SELECT service_name, request_model, prompt_version, toUnixTimestamp64Milli(first_seen) AS first_seen_ms, prompt_name,
       n, error_rate, latency_p95, mean_cost, flagged_rates, quality_rates
FROM versions
LEFT JOIN calls USING (service_name, request_model, prompt_version)
LEFT JOIN flags USING (service_name, request_model, prompt_version)
LEFT JOIN quality USING (service_name, request_model, prompt_version)
ORDER BY service_name, request_model, first_seen_ms, prompt_version
"""


def _rollout_regression(rule: Rule, client: Client, now: float) -> list[Observation]:
    """Newest prompt version (by first-seen within ``lookback``) vs the one before, per service/model."""
    for column in rule.match:
        if column != "deployment_environment":
            raise ValueError(f"rule {rule.name!r}: column {column!r} is not allowed here")
    where, params = _window(rule, now)
    # "first seen" needs a longer memory than the window, else every long-lived version looks new
    lookback_where = "timestamp <= toDateTime64({end:Float64}, 3, 'UTC')" + _match(rule)[0]
    sql = _ROLLOUT_SQL.format(where=where, lookback_where=lookback_where)
    params |= {"lookback_start": now - max(rule.lookback_s, rule.window_s), "detectors": list(rule.detectors)}
    result = client.query(sql, parameters=params)
    by_stream: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in result.result_rows:
        record = dict(zip(result.column_names, row))
        by_stream[(str(record["service_name"]), str(record["request_model"]))].append(record)
    out = []
    for (service, model), versions in by_stream.items():
        if len(versions) < 2:
            continue
        old, new = versions[-2], versions[-1]
        if min(old["n"], new["n"]) < rule.min_events:
            continue
        comparisons = _compare_versions(rule, old, new)
        regressions = [c for c in comparisons if c["regressed"]]
        key = {"service_name": service, "request_model": model, "prompt_version": str(new["prompt_version"])}
        out.append(Observation(rule, key, float(len(regressions)), 0.0, bool(regressions), {
            "baseline_version": str(old["prompt_version"]),
            # versions from the prompt registry: one command moves the label back
            "rollback": f"llmwatch prompts rollback {new['prompt_name']} --label production" if new["prompt_name"] else "",
            "events": {"new": new["n"], "baseline": old["n"]},
            "regressions": regressions,
            "comparisons": comparisons,
        }))
    return out


def _compare_versions(rule: Rule, old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Each metric of the new version against the old; a detector's or a quality check's rate
    only where both versions have ``min_events`` of them."""
    pairs: list[tuple[str, tuple[str, str] | None, float | None, float | None]] = []
    for metric in ("error_rate", "latency_p95", "mean_cost"):
        pairs.append((metric, None, old[metric], new[metric]))
    for metric, column, which in (("flagged_rate", "flagged_rates", "detector"), ("quality_rate", "quality_rates", "check")):
        before = {name: (n, r) for name, n, r in old.get(column) or []}
        for name, n, rate in sorted(new.get(column) or []):
            if name in before and min(n, before[name][0]) >= rule.min_events:
                pairs.append((metric, (which, name), before[name][1], rate))
    out = []
    for metric, label, before, after in pairs:
        margin = rule.margins.get(metric)
        if margin is None or before is None or after is None:
            continue
        entry: dict[str, Any] = {"metric": metric, "baseline": float(before), "new": float(after),
                                 "limit": margin.limit(float(before)), "regressed": margin.exceeded(float(after), float(before))}
        if label is not None:
            entry[label[0]] = label[1]
        out.append(entry)
    return out


def _describe(obs: Observation) -> str:
    kind, d = obs.rule.kind, obs.details
    if kind == "flagged_rate":
        return f"{obs.rule.detector} flagged rate {obs.value:.1%} vs threshold {obs.threshold:.1%} over {d.get('events')} events"
    if kind == "quality_rate":
        return f"{obs.rule.metric} rate {obs.value:.1%} vs threshold {obs.threshold:.1%} over {d.get('events')} answers"
    if kind == "error_rate":
        return f"error rate {obs.value:.1%} vs threshold {obs.threshold:.1%} over {d.get('events')} calls"
    if kind == "latency_p95":
        return f"p95 latency {obs.value:.0f} ms vs threshold {obs.threshold:.0f} ms"
    if kind == "cost_per_hour":
        return f"cost ${obs.value:.2f}/h vs threshold ${obs.threshold:.2f}/h"
    if kind == "drift":
        signals = ", ".join(d.get("drifted_signals", [])) or "none"
        return f"{obs.value:.0f} drifted report(s), signals: {signals}"
    worse = "; ".join(
        f"{r['metric']}{''.join('[' + r[k] + ']' for k in ('detector', 'check') if k in r)} {r['baseline']:.4g} -> {r['new']:.4g}"
        for r in d.get("regressions", [])
    ) or "no regression"
    fix = f"; roll back: {d['rollback']}" if d.get("rollback") and obs.firing else ""
    return f"prompt version {obs.key.get('prompt_version')} vs {d.get('baseline_version')}: {worse}{fix}"


_EVALUATORS: dict[str, Callable[[Rule, Client, float], list[Observation]]] = {
    "flagged_rate": _flagged_rate,
    "quality_rate": _quality_rate,
    "drift": _drift,
    "error_rate": _error_rate,
    "latency_p95": _latency_p95,
    "cost_per_hour": _cost_per_hour,
    "rollout_regression": _rollout_regression,
}
assert set(_EVALUATORS) == set(KINDS)
