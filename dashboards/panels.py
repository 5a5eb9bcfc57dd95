"""Panel specs of every llmwatch dashboard: titles, SQL and the columns each panel reads.

SQL uses the ClickHouse plugin's macros (``$__timeFilter``, ``$__timeInterval``, ``$__fromTime``,
``$__toTime``, ``$__interval_s``) and multi-value variables as ``IN (${var:singlequote})``. Time
series and stats read the per-minute rollups (``llm_calls_1m``, ``detections_1m``, ``quality_1m``,
``detection_scores_1h``, latency histograms ``llm_latency_1m``); only example tables (prompts,
answers, bounded to their last minutes by the rollup) and drift reports read raw rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PanelSpec:
    title: str
    type: str  # stat | timeseries | table | barchart | piechart
    sql: str
    columns: tuple[str, ...]
    format: str = "time_series"
    width: int = 12
    height: int = 8
    unit: str = ""
    decimals: int | None = None
    interval: str = ""  # panel min interval: never finer than the rollup's minute
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VariableSpec:
    name: str
    label: str
    sql: str
    multi: bool = True
    default: str = ""


@dataclass(frozen=True)
class DashboardSpec:
    file: str
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    variables: tuple[VariableSpec, ...]
    panels: tuple[PanelSpec, ...]


# --------------------------------------------------------------------------- shared SQL pieces

KEYS = ("service_name IN (${app:singlequote}) AND request_model IN (${model:singlequote}) "
        "AND prompt_version IN (${prompt_version:singlequote})")
FILTERS = KEYS + " AND deployment_environment IN (${environment:singlequote})"
# prompt-version comparison: the two chosen versions instead of the prompt_version variable
AB = ("service_name IN (${app:singlequote}) AND request_model IN (${model:singlequote}) "
      "AND deployment_environment IN (${environment:singlequote}) "
      "AND prompt_version IN (${version_a:singlequote}, ${version_b:singlequote})")
CALLS = f"FROM llm_calls_1m WHERE $__timeFilter(minute) AND {FILTERS}"
MINUTE = "1m"

APP = VariableSpec("app", "App", "SELECT DISTINCT service_name FROM llm_calls_1m WHERE $__timeFilter(minute) ORDER BY 1")
MODEL = VariableSpec("model", "Model", "SELECT DISTINCT request_model FROM llm_calls_1m "
                     "WHERE $__timeFilter(minute) AND service_name IN (${app:singlequote}) ORDER BY 1")
PROMPT_VERSION = VariableSpec("prompt_version", "Prompt version", "SELECT DISTINCT prompt_version FROM llm_calls_1m "
                              "WHERE $__timeFilter(minute) AND service_name IN (${app:singlequote}) "
                              "AND request_model IN (${model:singlequote}) ORDER BY 1")
ENVIRONMENT = VariableSpec("environment", "Environment",
                           "SELECT DISTINCT deployment_environment FROM llm_calls_1m WHERE $__timeFilter(minute) ORDER BY 1")
STANDARD = (APP, MODEL, PROMPT_VERSION, ENVIRONMENT)
_VERSIONS = ("SELECT DISTINCT prompt_version FROM llm_calls_1m WHERE $__timeFilter(minute) "
             "AND service_name IN (${app:singlequote}) ORDER BY 1")
VERSION_A = VariableSpec("version_a", "Version A", _VERSIONS, multi=False, default="v1")
VERSION_B = VariableSpec("version_b", "Version B", _VERSIONS, multi=False, default="v2")


def detector_rate(detector: str, by: str, source: str = "detections_1m", column: str = "detector") -> str:
    """Flagged share of a detector's verdicts (or, from ``quality_1m`` by ``metric``, of one
    quality check) per interval, one series per ``by`` value."""
    return f"""
SELECT $__timeInterval(minute) AS time, {by}, sum(flagged) / sum(checks) AS flagged_rate
FROM {source}
WHERE $__timeFilter(minute) AND {column} = '{detector}' AND {FILTERS}
GROUP BY time, {by}
ORDER BY time"""


def detector_stat(detector: str) -> str:
    return f"""
SELECT sum(flagged) / sum(checks) AS flagged_rate
FROM detections_1m
WHERE $__timeFilter(minute) AND detector = '{detector}' AND {FILTERS}"""


def examples(detector: str, columns: str, limit: int = 50) -> str:
    """Latest flagged verdicts of a detector joined to their (already redacted) calls.

    ``since``: the newest minute from which the rollup counts at least ``2 * limit`` flagged verdicts
    (the margin covers replayed duplicates), so both raw reads cover a few minutes, not the range:
    ``detections`` and ``llm_calls`` then prune by their sorting keys (keys, then timestamp).
    """
    return f"""
WITH (
    SELECT if(sum(n) > {2 * limit}, minIf(minute, newer < {2 * limit}), toDateTime(0))
    FROM (
        SELECT minute, n, sum(n) OVER (ORDER BY minute DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newer
        FROM (
            SELECT minute, sum(flagged) AS n
            FROM detections_1m
            WHERE $__timeFilter(minute) AND detector = '{detector}' AND {FILTERS}
            GROUP BY minute
        )
    )
) AS since,
flagged AS (
    SELECT event_id, timestamp, service_name, request_model, prompt_version, label, score, evidence
    FROM detections
    WHERE $__timeFilter(timestamp) AND timestamp >= since AND detector = '{detector}' AND flagged = 1 AND {FILTERS}
    ORDER BY timestamp DESC
    LIMIT {limit}
)
SELECT f.timestamp AS time, f.service_name AS app, f.request_model AS model, f.prompt_version AS version,
    f.label AS label, round(f.score, 3) AS score, {columns}, f.evidence AS evidence
FROM flagged AS f
LEFT JOIN (
    SELECT event_id, input_contents, output_text, retrieval_query, retrieved_context
    FROM llm_calls
    WHERE $__timeFilter(timestamp) AND timestamp >= since AND {FILTERS} AND event_id IN (SELECT event_id FROM flagged)
) AS c ON c.event_id = f.event_id
ORDER BY time DESC"""


# Latency histograms (llm_latency_1m): bucket b holds [1.2^b, 1.2^(b+1)) ms.
LOG_BUCKET = "log(1.2)"
TIME = ("$__timeInterval(minute)", "time")  # a ``by`` group of latency_quantiles: one row per interval


def _hist_quantile(p: float) -> str:
    """SQL: the ``p`` quantile of a histogram given as ``hb`` (buckets, sorted, a bucket may repeat) and
    ``hc`` (their counts), ``cum`` (cumulative counts) and ``total``: the bucket where the cumulative count
    crosses ``p * total``, with log-linear interpolation inside it."""
    i = f"arrayFirstIndex(x -> x >= {p} * total, cum)"
    bucket = f"hb[{i}]"
    before = f"(cum[indexOf(hb, {bucket})] - hc[indexOf(hb, {bucket})])"  # calls in lower buckets
    size = f"(cum[arrayCount(x -> x <= {bucket}, hb)] - {before})"  # calls in this bucket
    return f"exp(({bucket} + ({p} * total - {before}) / {size}) * {LOG_BUCKET})"


# (bucket, count) packed into one UInt64, so a plain numeric sort orders the entries by bucket
_PACK = "bitShiftLeft(toUInt64(b + 32768), 40) + n"
_UNPACK = ("arrayMap(x -> toInt32(bitShiftRight(x, 40)) - 32768, e) AS hb, arrayMap(x -> bitAnd(x, 1099511627775), e) AS hc,\n"
           "        arrayCumSum(hc) AS cum, arraySum(hc) AS total")


def latency_quantiles(quantiles: dict[str, float], by: tuple[tuple[str, str], ...] = (), metric: str = "latency_ms",
                      where: str = FILTERS, order: str = "") -> str:
    """Percentiles of ``metric`` from the per-minute histograms, one row per ``by`` group.

    ``by``: (expression, alias) pairs; ``quantiles``: column alias -> quantile level. Per interval
    (``by`` holds :data:`TIME`): each group concatenates its rows' (bucket, count) entries and sorts
    them, no hash aggregation over the entries. Otherwise (few groups, many entries each): the entries
    are summed per bucket first.
    """
    sel = "".join(f"{expr} AS {alias}, " if expr != alias else f"{alias}, " for expr, alias in by)
    names = "".join(f"{alias}, " for _, alias in by)
    group = f"\n    GROUP BY {names.removesuffix(', ')}" if by else ""
    values = ", ".join(f"{_hist_quantile(p)} AS {alias}" for alias, p in quantiles.items())
    source = f"llm_latency_1m\n        WHERE $__timeFilter(minute) AND metric = '{metric}' AND {where}"
    if TIME in by:
        inner = f"""SELECT {names}arraySort(groupArrayArray(arrayMap((b, n) -> {_PACK}, hist.1, hist.2))) AS e,
        {_UNPACK}
    FROM (
        SELECT {sel}hist
        FROM {source}
    ){group}"""
    else:
        inner = f"""SELECT {names}arraySort(groupArray({_PACK})) AS e,
        {_UNPACK}
    FROM (
        SELECT {sel}b, sum(c) AS n
        FROM {source.replace(chr(10), " ARRAY JOIN hist.1 AS b, hist.2 AS c" + chr(10), 1)}
        GROUP BY {names}b
    ){group}"""
    return f"""SELECT {names}{values}
FROM (
    {inner}
){f"{chr(10)}ORDER BY {order}" if order else ""}"""


def ab_series(value_sql: str, source: str = "llm_calls_1m", extra: str = "") -> str:
    """One series per prompt version (A and B) of one metric."""
    return f"""
SELECT $__timeInterval(minute) AS time, prompt_version, {value_sql}
FROM {source}
WHERE $__timeFilter(minute) AND {AB}{extra}
GROUP BY time, prompt_version
ORDER BY time"""


# --------------------------------------------------------------------------- dashboards

OVERVIEW = DashboardSpec(
    "overview", "llmwatch-overview", "llmwatch / Overview",
    "Traffic, errors, cost, latency and detector verdicts across all apps.", ("overview",), STANDARD, (
        PanelSpec("Calls", "stat", f"SELECT sum(calls) AS calls {CALLS}", ("calls",), "table", 4, 4, "short"),
        PanelSpec("Error rate", "stat", f"SELECT sum(errors) / sum(calls) AS error_rate {CALLS}",
                  ("error_rate",), "table", 4, 4, "percentunit", 2),
        PanelSpec("Cost", "stat", f"SELECT sum(cost_usd) AS cost_usd {CALLS}", ("cost_usd",), "table", 4, 4, "currencyUSD", 2),
        PanelSpec("p95 latency", "stat", latency_quantiles({"p95_ms": 0.95}),
                  ("p95_ms",), "table", 4, 4, "ms", 0),
        PanelSpec("Injection flagged", "stat", detector_stat("injection"), ("flagged_rate",), "table", 4, 4, "percentunit", 2),
        PanelSpec("Unsupported answers", "stat", detector_stat("grounding"), ("flagged_rate",), "table", 4, 4, "percentunit", 2),
        PanelSpec("Calls per app", "timeseries", f"""
SELECT $__timeInterval(minute) AS time, service_name, sum(calls) AS calls
{CALLS}
GROUP BY time, service_name
ORDER BY time""", ("time", "service_name", "calls"), interval=MINUTE, unit="short"),
        PanelSpec("Error rate per app", "timeseries", f"""
SELECT $__timeInterval(minute) AS time, service_name, sum(errors) / sum(calls) AS error_rate
{CALLS}
GROUP BY time, service_name
ORDER BY time""", ("time", "service_name", "error_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Flagged rate per detector", "timeseries", detector_rate("injection", "detector").replace(
            "detector = 'injection'", "detector IN ('injection', 'grounding')"),
            ("time", "detector", "flagged_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Latest drift state per key", "table", f"""
SELECT service_name AS app, request_model AS model, prompt_version AS version, signal,
    argMax(drifted, window_end) AS drifted, argMax(p_value, window_end) AS p_value, max(window_end) AS last_report
FROM drift_reports
WHERE $__timeFilter(window_end) AND {KEYS}
GROUP BY app, model, version, signal
ORDER BY drifted DESC, p_value ASC""", ("app", "model", "version", "signal", "drifted", "p_value", "last_report"),
                  "table"),
    ),
)

SAFETY = DashboardSpec(
    "safety", "llmwatch-safety", "llmwatch / Safety",
    "Prompt-injection verdicts: flagged rate by detector layer and by app, and example flagged prompts "
    "(stored redacted by the worker).", ("safety", "injection"), STANDARD, (
        PanelSpec("Injection flagged rate", "stat", detector_stat("injection"), ("flagged_rate",), "table", 6, 4,
                  "percentunit", 2),
        PanelSpec("Flagged prompts", "stat", f"""
SELECT sum(flagged) AS flagged_count
FROM detections_1m
WHERE $__timeFilter(minute) AND detector = 'injection' AND {FILTERS}""", ("flagged_count",), "table", 6, 4, "short"),
        PanelSpec("Flagged by layer", "piechart", f"""
SELECT label AS layer, sum(flagged) AS flagged
FROM detections_1m
WHERE $__timeFilter(minute) AND detector = 'injection' AND label != 'clean' AND {FILTERS}
GROUP BY layer
ORDER BY layer""", ("layer", "flagged"), "table", 12, 4,
                  options={"reduceOptions": {"values": True, "calcs": [], "fields": ""}, "pieType": "donut"}),
        PanelSpec("Injection flagged rate by layer", "timeseries", f"""
SELECT time, label AS layer, flagged / total AS flagged_rate
FROM (
    SELECT time, label, flagged, sum(checks) OVER (PARTITION BY time) AS total
    FROM (
        SELECT $__timeInterval(minute) AS time, label, sum(flagged) AS flagged, sum(checks) AS checks
        FROM detections_1m
        WHERE $__timeFilter(minute) AND detector = 'injection' AND {FILTERS}
        GROUP BY time, label
    )
)
WHERE label != 'clean'
ORDER BY time""", ("time", "layer", "flagged_rate"), interval=MINUTE, unit="percentunit",
                  description="Share of all checked prompts flagged, split by the layer that fired."),
        PanelSpec("Injection flagged rate by app", "timeseries", detector_rate("injection", "service_name"),
                  ("time", "service_name", "flagged_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Flagged by app and layer", "table", f"""
SELECT service_name AS app, label AS layer, sum(flagged) AS flagged_count,
    round(sum(flagged_score_sum) / sum(flagged), 3) AS mean_score
FROM detections_1m
WHERE $__timeFilter(minute) AND detector = 'injection' AND label != 'clean' AND {FILTERS}
GROUP BY app, layer
ORDER BY flagged_count DESC""", ("app", "layer", "flagged_count", "mean_score"), "table", 8),
        PanelSpec("Injection score distribution", "barchart", f"""
SELECT toString(bucket) AS score_bucket, sum(verdicts) AS verdicts
FROM detection_scores_1h
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime AND detector = 'injection' AND {FILTERS}
GROUP BY bucket
ORDER BY bucket""", ("score_bucket", "verdicts"), "table", 16,
                  options={"xField": "score_bucket", "orientation": "vertical"}),
        PanelSpec("Example flagged prompts", "table",
                  examples("injection", "arrayStringConcat(c.input_contents, '\\n') AS prompt"),
                  ("time", "app", "model", "version", "label", "score", "prompt", "evidence"), "table", 24, 12),
    ),
)

#: The quality detector's checks, as ``quality_scores.metric`` names them, with their rate columns.
QUALITY_RATES = (("refusal", "refusal_rate"), ("relevance", "off_topic_rate"), ("truncation", "truncation_rate"),
                 ("degenerate", "degenerate_rate"), ("format", "format_failure_rate"),
                 ("language", "language_mismatch_rate"), ("pii", "pii_rate"))
QUALITY_BY_KEY = ", ".join(f"sumIf(flagged, metric = '{m}') / nullIf(sumIf(checks, metric = '{m}'), 0) AS {col}"
                           for m, col in QUALITY_RATES)


QUALITY = DashboardSpec(
    "quality", "llmwatch-quality", "llmwatch / Quality",
    "Every answer's quality checks (refusal, relevance, truncation, degenerate output, format, language, "
    "PII) per app, model and prompt version; grounding of RAG answers with its evidence.",
    ("quality", "grounding", "refusal"), STANDARD, (
        PanelSpec("Answers scored", "stat", f"""
SELECT sum(checks) AS answers
FROM detections_1m
WHERE $__timeFilter(minute) AND detector = 'quality' AND {FILTERS}""", ("answers",), "table", 6, 4, "short"),
        PanelSpec("Answers with a quality flag", "stat", detector_stat("quality"), ("flagged_rate",), "table", 6, 4,
                  "percentunit", 2, description="Share of answers where any check flagged."),
        PanelSpec("Refusal rate", "stat", f"""
SELECT sum(flagged) / sum(checks) AS refusal_rate
FROM quality_1m
WHERE $__timeFilter(minute) AND metric = 'refusal' AND {FILTERS}""", ("refusal_rate",), "table", 6, 4, "percentunit", 2),
        PanelSpec("Truncation rate", "stat", f"""
SELECT sum(flagged) / sum(checks) AS truncation_rate
FROM quality_1m
WHERE $__timeFilter(minute) AND metric = 'truncation' AND {FILTERS}""", ("truncation_rate",), "table", 6, 4,
                  "percentunit", 2),
        PanelSpec("Flagged rate by check", "timeseries", f"""
SELECT $__timeInterval(minute) AS time, metric, sum(flagged) / sum(checks) AS flagged_rate
FROM quality_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY time, metric
ORDER BY time""", ("time", "metric", "flagged_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Refusal rate by app and prompt version", "timeseries",
                  detector_rate("refusal", "concat(service_name, ' / ', prompt_version) AS key", "quality_1m", "metric"),
                  ("time", "key", "flagged_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Quality by app, model and prompt version", "table", f"""
SELECT service_name AS app, request_model AS model, prompt_version AS version,
    sumIf(checks, metric = 'refusal') AS answers, {QUALITY_BY_KEY}
FROM quality_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY app, model, version
ORDER BY app, model, version""", ("app", "model", "version", "answers", *(c for _, c in QUALITY_RATES)), "table", 24, 8,
                  "percentunit", 2, description="Rates per check; empty where a check never applied (format "
                  "needs a declared output format)."),
        PanelSpec("Flagged answers with their checks", "table",
                  examples("quality", "c.input_contents[-1] AS prompt, c.output_text AS answer"),
                  ("time", "app", "model", "version", "label", "score", "prompt", "answer", "evidence"),
                  "table", 24, 12),
        PanelSpec("Unsupported answer rate", "stat", detector_stat("grounding"), ("flagged_rate",), "table", 6, 4,
                  "percentunit", 2),
        PanelSpec("Mean grounding score", "stat", f"""
SELECT sum(score_sum) / sum(checks) AS mean_score
FROM detections_1m
WHERE $__timeFilter(minute) AND detector = 'grounding' AND {FILTERS}""", ("mean_score",), "table", 6, 4, "none", 3),
        PanelSpec("Checked answers", "stat", f"""
SELECT sum(checks) AS answers
FROM detections_1m
WHERE $__timeFilter(minute) AND detector = 'grounding' AND {FILTERS}""", ("answers",), "table", 12, 4, "short"),
        PanelSpec("Unsupported answer rate by app and model", "timeseries",
                  detector_rate("grounding", "concat(service_name, ' / ', request_model) AS key"),
                  ("time", "key", "flagged_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Mean grounding score over time", "timeseries", f"""
SELECT $__timeInterval(minute) AS time, service_name, sum(score_sum) / sum(checks) AS mean_score
FROM detections_1m
WHERE $__timeFilter(minute) AND detector = 'grounding' AND {FILTERS}
GROUP BY time, service_name
ORDER BY time""", ("time", "service_name", "mean_score"), interval=MINUTE,
                  description="Higher = less supported by the retrieved context (threshold 0.5)."),
        PanelSpec("Grounding score distribution", "barchart", f"""
SELECT toString(bucket) AS score_bucket, sum(verdicts) AS answers
FROM detection_scores_1h
WHERE hour >= toStartOfHour($__fromTime) AND hour <= $__toTime AND detector = 'grounding' AND {FILTERS}
GROUP BY bucket
ORDER BY bucket""", ("score_bucket", "answers"), "table", 24,
                  options={"xField": "score_bucket", "orientation": "vertical"}),
        PanelSpec("Unsupported answers with evidence", "table",
                  examples("grounding", "c.retrieval_query AS question, c.output_text AS answer"),
                  ("time", "app", "model", "version", "label", "score", "question", "answer", "evidence"),
                  "table", 24, 12),
    ),
)

DRIFT = DashboardSpec(
    "drift", "llmwatch-drift", "llmwatch / Drift",
    "Drift tests per stream key (app, model, prompt version) and signal: p-values, alarms, reports.",
    ("drift",), (APP, MODEL, PROMPT_VERSION), (
        PanelSpec("Keys drifting now", "stat", f"""
SELECT countIf(drifted = 1) AS drifting
FROM (
    SELECT service_name, request_model, prompt_version, max(last_drifted) AS drifted
    FROM (
        SELECT service_name, request_model, prompt_version, signal, argMax(drifted, window_end) AS last_drifted
        FROM drift_reports
        WHERE $__timeFilter(window_end) AND {KEYS}
        GROUP BY service_name, request_model, prompt_version, signal
    )
    GROUP BY service_name, request_model, prompt_version
)""", ("drifting",), "table", 6, 4, "short"),
        PanelSpec("Drift alarms", "stat", f"""
SELECT countIf(drifted = 1) AS alarms
FROM drift_reports
WHERE $__timeFilter(window_end) AND {KEYS}""", ("alarms",), "table", 6, 4, "short"),
        PanelSpec("Reports", "stat", f"""
SELECT count() AS reports
FROM drift_reports
WHERE $__timeFilter(window_end) AND {KEYS}""", ("reports",), "table", 12, 4, "short"),
        PanelSpec("p-value per key and signal", "timeseries", f"""
SELECT $__timeInterval(window_end) AS time,
    concat(service_name, '/', request_model, '/', prompt_version, ' ', signal) AS key, min(p_value) AS min_p_value
FROM drift_reports
WHERE $__timeFilter(window_end) AND p_value IS NOT NULL AND {KEYS}
GROUP BY time, key
ORDER BY time""", ("time", "key", "min_p_value"), width=24, height=9,
                  description="Lowest p-value per interval; drift is declared below alpha (log scale).",
                  options={"legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["min"]}}),
        PanelSpec("Drifted keys over time", "timeseries", f"""
SELECT $__timeInterval(window_end) AS time, signal,
    uniqExactIf((service_name, request_model, prompt_version), drifted = 1) AS drifted_keys
FROM drift_reports
WHERE $__timeFilter(window_end) AND {KEYS}
GROUP BY time, signal
ORDER BY time""", ("time", "signal", "drifted_keys"), width=24, unit="short"),
        PanelSpec("Drift reports", "table", f"""
SELECT window_end AS time, service_name AS app, request_model AS model, prompt_version AS version, signal,
    drifted, p_value, statistic, reference_size, window_size, details
FROM drift_reports
WHERE $__timeFilter(window_end) AND {KEYS}
ORDER BY drifted DESC, time DESC
LIMIT 200""", ("time", "app", "model", "version", "signal", "drifted", "p_value", "statistic",
               "reference_size", "window_size", "details"), "table", 24, 12),
    ),
)

COST_LATENCY = DashboardSpec(
    "cost_latency", "llmwatch-cost-latency", "llmwatch / Cost & latency",
    "Spend, tokens and latency percentiles, all from the per-minute rollup.", ("cost", "latency"), STANDARD, (
        PanelSpec("Cost per hour", "timeseries", f"""
SELECT toStartOfHour(minute) AS time, service_name, sum(cost_usd) AS cost_usd
{CALLS}
GROUP BY time, service_name
ORDER BY time""", ("time", "service_name", "cost_usd"), unit="currencyUSD",
                  options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": ["sum"]}}),
        PanelSpec("Latency p50 / p95 / p99", "timeseries",
                  latency_quantiles({"p50": 0.5, "p95": 0.95, "p99": 0.99}, (TIME,), order="time"),
                  ("time", "p50", "p95", "p99"), interval=MINUTE, unit="ms"),
        PanelSpec("p95 latency by model", "timeseries",
                  latency_quantiles({"p95_ms": 0.95}, (TIME, ("request_model", "request_model")), order="time"),
                  ("time", "request_model", "p95_ms"), interval=MINUTE, unit="ms"),
        PanelSpec("Time to first token p50 / p95", "timeseries",
                  latency_quantiles({"p50": 0.5, "p95": 0.95}, (TIME,), metric="ttft_ms", order="time"),
                  ("time", "p50", "p95"), interval=MINUTE, unit="ms",
                  description="Calls that failed have no first token and are left out."),
        PanelSpec("Tokens per second", "timeseries", f"""
SELECT $__timeInterval(minute) AS time, sum(input_tokens) / $__interval_s AS input_tps,
    sum(output_tokens) / $__interval_s AS output_tps
{CALLS}
GROUP BY time
ORDER BY time""", ("time", "input_tps", "output_tps"), interval=MINUTE, unit="short"),
        PanelSpec("Cost and latency by app and model", "table", f"""
SELECT c.app AS app, c.model AS model, c.call_count AS call_count, c.spend_usd AS spend_usd,
    c.cost_per_1k_calls AS cost_per_1k_calls, c.tokens_in AS tokens_in, c.tokens_out AS tokens_out,
    c.mean_latency_ms AS mean_latency_ms, l.p99_ms AS p99_ms
FROM (
    SELECT service_name AS app, request_model AS model, sum(calls) AS call_count, sum(cost_usd) AS spend_usd,
        sum(cost_usd) / sum(calls) * 1000 AS cost_per_1k_calls, sum(input_tokens) AS tokens_in,
        sum(output_tokens) AS tokens_out, sum(latency_sum_ms) / sum(calls) AS mean_latency_ms
    {CALLS}
    GROUP BY app, model
) AS c
LEFT JOIN (
{latency_quantiles({"p99_ms": 0.99}, (("service_name", "app"), ("request_model", "model")))}
) AS l ON l.app = c.app AND l.model = c.model
ORDER BY spend_usd DESC""", ("app", "model", "call_count", "spend_usd", "cost_per_1k_calls", "tokens_in",
                             "tokens_out", "mean_latency_ms", "p99_ms"), "table", 24),
    ),
)

_AB_VARS = (APP, MODEL, ENVIRONMENT, VERSION_A, VERSION_B)
_AB_DET = "detections_1m"
PROMPT_VERSIONS = DashboardSpec(
    "prompt_versions", "llmwatch-prompt-versions", "llmwatch / Prompt versions",
    "Two prompt versions side by side on every metric (choose Version A and Version B).", ("prompt-versions",),
    _AB_VARS, (
        PanelSpec("Version A vs B", "table", f"""
SELECT c.prompt_version AS version, c.call_count AS calls, c.error_rate AS error_rate, l.p50_ms AS p50_ms,
    l.p95_ms AS p95_ms, l.p99_ms AS p99_ms, c.cost_per_call AS cost_per_call, c.output_tokens_per_call AS output_tokens_per_call,
    d.injection_rate AS injection_rate, d.unsupported_rate AS unsupported_rate
FROM (
    SELECT prompt_version, sum(calls) AS call_count, sum(errors) / sum(calls) AS error_rate,
        sum(cost_usd) / sum(calls) AS cost_per_call, sum(output_tokens) / sum(calls) AS output_tokens_per_call
    FROM llm_calls_1m
    WHERE $__timeFilter(minute) AND {AB}
    GROUP BY prompt_version
) AS c
LEFT JOIN (
    SELECT prompt_version,
        sumIf(flagged, detector = 'injection') / nullIf(sumIf(checks, detector = 'injection'), 0) AS injection_rate,
        sumIf(flagged, detector = 'grounding') / nullIf(sumIf(checks, detector = 'grounding'), 0) AS unsupported_rate
    FROM {_AB_DET}
    WHERE $__timeFilter(minute) AND {AB}
    GROUP BY prompt_version
) AS d ON d.prompt_version = c.prompt_version
LEFT JOIN (
{latency_quantiles({"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}, (("prompt_version", "prompt_version"),), where=AB)}
) AS l ON l.prompt_version = c.prompt_version
ORDER BY version""", ("version", "calls", "error_rate", "p50_ms", "p95_ms", "p99_ms", "cost_per_call",
                      "output_tokens_per_call", "injection_rate", "unsupported_rate"), "table", 24, 6),
        PanelSpec("p95 latency: A vs B", "timeseries",
                  latency_quantiles({"p95_ms": 0.95}, (TIME, ("prompt_version", "prompt_version")), where=AB,
                                    order="time"),
                  ("time", "prompt_version", "p95_ms"), interval=MINUTE, unit="ms"),
        PanelSpec("Error rate: A vs B", "timeseries", ab_series("sum(errors) / sum(calls) AS error_rate"),
                  ("time", "prompt_version", "error_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Cost per call: A vs B", "timeseries", ab_series("sum(cost_usd) / sum(calls) AS cost_per_call"),
                  ("time", "prompt_version", "cost_per_call"), interval=MINUTE, unit="currencyUSD"),
        PanelSpec("Output tokens per call: A vs B", "timeseries",
                  ab_series("sum(output_tokens) / sum(calls) AS output_tokens_per_call"),
                  ("time", "prompt_version", "output_tokens_per_call"), interval=MINUTE, unit="short"),
        PanelSpec("Injection flagged rate: A vs B", "timeseries",
                  ab_series("sum(flagged) / sum(checks) AS flagged_rate", _AB_DET, " AND detector = 'injection'"),
                  ("time", "prompt_version", "flagged_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Unsupported answer rate: A vs B", "timeseries",
                  ab_series("sum(flagged) / sum(checks) AS flagged_rate", _AB_DET, " AND detector = 'grounding'"),
                  ("time", "prompt_version", "flagged_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Refusal rate: A vs B", "timeseries",
                  ab_series("sum(flagged) / sum(checks) AS refusal_rate", "quality_1m", " AND metric = 'refusal'"),
                  ("time", "prompt_version", "refusal_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("Answers with a quality flag: A vs B", "timeseries",
                  ab_series("sum(flagged) / sum(checks) AS flagged_rate", _AB_DET, " AND detector = 'quality'"),
                  ("time", "prompt_version", "flagged_rate"), interval=MINUTE, unit="percentunit"),
        PanelSpec("What changed: template and settings of A and B", "table", """
SELECT version, name AS prompt, committed_at AS committed, author, model, config, template
FROM prompt_versions FINAL
WHERE version IN (${version_a:singlequote}, ${version_b:singlequote})
ORDER BY committed_at""", ("version", "prompt", "committed", "author", "model", "config", "template"), "table", 24, 8,
                  description="The two versions being compared, as published to llm.prompts: what the team changed "
                              "between them (for a line diff: llmwatch prompts diff NAME A B)."),
        PanelSpec("Published prompt versions", "table", """
SELECT v.name AS prompt, v.version AS version, v.model AS model, arrayStringConcat(v.labels, ', ') AS labels,
    v.author AS author, v.committed_at AS committed, ifNull(c.calls, 0) AS calls
FROM prompt_versions AS v FINAL
LEFT JOIN (
    SELECT prompt_version, sum(calls) AS calls
    FROM llm_calls_1m
    WHERE $__timeFilter(minute) AND service_name IN (${app:singlequote})
    GROUP BY prompt_version
) AS c ON c.prompt_version = v.version
ORDER BY prompt, committed DESC""", ("prompt", "version", "model", "labels", "author", "committed", "calls"), "table", 24, 8,
                  description="Every version `llmwatch prompts publish` wrote to llm.prompts, its labels, and the calls "
                              "stamped with it in the range (apps stamp prompt_version with the SDK)."),
    ),
)

DASHBOARDS: tuple[DashboardSpec, ...] = (OVERVIEW, SAFETY, QUALITY, DRIFT, COST_LATENCY, PROMPT_VERSIONS)
