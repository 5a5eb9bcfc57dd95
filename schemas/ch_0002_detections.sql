-- One row per (event, detector): what a detector said about one LLM call. Keyed by event_id and
-- detector inside the sorting key, so reprocessing the same events collapses (read with FINAL).
CREATE TABLE IF NOT EXISTS detections
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
    detected_at             DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_kafka_offset kafka_offset TYPE minmax GRANULARITY 64
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (service_name, detector, request_model, prompt_version, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL {raw_ttl_days} DAY;

-- Periodic drift reports per stream key and signal (prompt/response embeddings, latency, ...).
-- report_id is deterministic (key + window end), so a re-emitted report replaces itself.
CREATE TABLE IF NOT EXISTS drift_reports
(
    report_id               String,
    service_name            LowCardinality(String),
    request_model           LowCardinality(String),
    prompt_version          LowCardinality(String),
    signal                  LowCardinality(String),
    drifted                 UInt8,
    p_value                 Nullable(Float64),
    statistic               Nullable(Float64),
    reference_size          UInt32,
    window_size             UInt32,
    details                 String,
    window_end              DateTime64(3, 'UTC'),
    reported_at             DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_end)
ORDER BY (service_name, request_model, prompt_version, signal, window_end, report_id)
TTL toDateTime(window_end) + INTERVAL {raw_ttl_days} DAY;
