-- Raw LLM calls, one row per event. ReplacingMergeTree keyed by event_id inside the sorting key:
-- a replayed event (worker crash before commit, producer retry) collapses to one row; readers
-- that need exact counts use FINAL. Sorting key = the dashboards' common filters, then time.
CREATE TABLE IF NOT EXISTS llm_calls
(
    event_id                String,
    timestamp               DateTime64(3, 'UTC'),
    service_name            LowCardinality(String),
    deployment_environment  LowCardinality(String),
    provider_name           LowCardinality(String),
    operation_name          LowCardinality(String),
    request_model           LowCardinality(String),
    response_model          LowCardinality(String),
    prompt_name             LowCardinality(String),
    prompt_version          LowCardinality(String),
    prompt_template_hash    String,
    input_roles             Array(LowCardinality(String)),
    input_contents          Array(String),
    system_instructions     String,
    output_text             String,
    finish_reason           LowCardinality(String),
    retrieved_context       Array(String),
    retrieval_query         String,
    input_tokens            UInt32,
    output_tokens           UInt32,
    cached_input_tokens     UInt32,
    latency_ms              Float64,
    time_to_first_token_ms  Nullable(Float64),
    cost_usd                Nullable(Float64),
    status                  LowCardinality(String),
    error_type              LowCardinality(String),
    user_id                 String,
    conversation_id         String,
    trace_id                String,
    span_id                 String,
    attributes              Map(String, String),
    schema_id               UInt32,
    kafka_topic             LowCardinality(String),
    kafka_partition         UInt32,
    kafka_offset            UInt64,
    -- set by ClickHouse when the insert lands: produce -> queryable latency is ingested_at - timestamp
    ingested_at             DateTime64(3, 'UTC') DEFAULT now64(3),
    -- Each part holds one batch, a contiguous offset range: the replay guard prunes by it.
    INDEX idx_kafka_offset kafka_offset TYPE minmax GRANULARITY 64
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(timestamp)
ORDER BY (service_name, request_model, prompt_version, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL {raw_ttl_days} DAY;
