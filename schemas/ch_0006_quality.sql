-- One row per (call, quality check): the quality detector stores one verdict per call in
-- `detections` (detector 'quality') with every check under evidence.evaluations; this view splits
-- it by check, so dashboards, `llmwatch report` and alert rules read refusal, relevance,
-- truncation, degenerate, format, language and PII rates without parsing JSON. It fires once per
-- stored verdict (the replay guard stores each (event, detector) once); after a crash replay the
-- rollup repair re-inserts the split rows of replayed verdicts, which ReplacingMergeTree collapses
-- (read with FINAL).
CREATE TABLE IF NOT EXISTS quality_scores
(
    event_id                String,
    metric                  LowCardinality(String),
    value                   Float32,
    label                   LowCardinality(String),
    flagged                 UInt8,
    detector_version        LowCardinality(String),
    timestamp               DateTime64(3, 'UTC'),
    service_name            LowCardinality(String),
    deployment_environment  LowCardinality(String),
    request_model           LowCardinality(String),
    prompt_version          LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (service_name, metric, request_model, prompt_version, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL {raw_ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS quality_scores_mv TO quality_scores AS
SELECT
    event_id,
    tupleElement(check, 1) AS metric,
    toFloat32(JSONExtractFloat(tupleElement(check, 2), 'score')) AS value,
    JSONExtractString(tupleElement(check, 2), 'label') AS label,
    toUInt8(JSONExtractBool(tupleElement(check, 2), 'flagged')) AS flagged,
    detector_version,
    timestamp,
    service_name,
    deployment_environment,
    request_model,
    prompt_version
FROM detections
ARRAY JOIN JSONExtractKeysAndValuesRaw(evidence, 'evaluations') AS check
WHERE detector = 'quality';

-- Quality checks per minute, key, metric and label: what the Quality dashboard reads.
CREATE TABLE IF NOT EXISTS quality_1m
(
    minute                  DateTime('UTC'),
    service_name            LowCardinality(String),
    request_model           LowCardinality(String),
    prompt_version          LowCardinality(String),
    deployment_environment  LowCardinality(String),
    metric                  LowCardinality(String),
    label                   LowCardinality(String),
    checks                  SimpleAggregateFunction(sum, UInt64),
    flagged                 SimpleAggregateFunction(sum, UInt64),
    value_sum               SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (metric, service_name, request_model, prompt_version, deployment_environment, label, minute)
TTL minute + INTERVAL {rollup_ttl_days} DAY;

-- Read from detections, not quality_scores: a view of a view would put two non-atomic writes
-- between a verdict and its minute, and rollup repair rebuilds buckets from the source table.
CREATE MATERIALIZED VIEW IF NOT EXISTS quality_1m_mv TO quality_1m AS
SELECT
    toStartOfMinute(toDateTime(timestamp, 'UTC')) AS minute,
    service_name,
    request_model,
    prompt_version,
    deployment_environment,
    tupleElement(check, 1) AS metric,
    JSONExtractString(tupleElement(check, 2), 'label') AS label,
    toUInt64(count()) AS checks,
    toUInt64(sum(JSONExtractBool(tupleElement(check, 2), 'flagged'))) AS flagged,
    toFloat64(sum(JSONExtractFloat(tupleElement(check, 2), 'score'))) AS value_sum
FROM detections
ARRAY JOIN JSONExtractKeysAndValuesRaw(evidence, 'evaluations') AS check
WHERE detector = 'quality'
GROUP BY minute, service_name, request_model, prompt_version, deployment_environment, metric, label;
