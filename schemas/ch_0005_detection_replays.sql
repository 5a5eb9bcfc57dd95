-- Verdicts from `llmwatch replay`: detectors re-run on calls already in llm_calls (after a detector
-- upgrade), kept apart from the live detections table on purpose:
--   * detections' sorting key has no detector_version, so a replayed row there would replace the
--     live one under FINAL; here the version is in the key, and every version's row stays.
--   * no materialized view reads this table: replays never reach the live rollups (detections_1m,
--     detection_scores_1h), and rollup repair rebuilds those buckets from detections alone.
--   * the live replay and duplicate guards query detections only, so a replayed verdict can never
--     make the worker drop (or keep) a live one.
-- Same columns as detections (kafka_* = the source position of the replayed call), plus the replay
-- that wrote the row. Keyed by (event, detector, version): a rerun or a resumed replay collapses
-- into the same rows (and the replay skips calls already done, so it adds none). Read with FINAL.
CREATE TABLE IF NOT EXISTS detection_replays
(
    event_id                String,
    detector                LowCardinality(String),
    detector_version        LowCardinality(String),
    score                   Float32,
    flagged                 UInt8,
    threshold               Float32,
    label                   LowCardinality(String),
    evidence                String,
    timestamp               DateTime64(3, 'UTC'),
    service_name            LowCardinality(String),
    deployment_environment  LowCardinality(String),
    request_model           LowCardinality(String),
    prompt_version          LowCardinality(String),
    kafka_topic             LowCardinality(String),
    kafka_partition         UInt32,
    kafka_offset            UInt64,
    replay_id               String,
    detected_at             DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (service_name, detector, detector_version, request_model, prompt_version, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL {raw_ttl_days} DAY;
