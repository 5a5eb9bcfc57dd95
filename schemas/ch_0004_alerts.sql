-- Alert history: one row per notification (a firing, a cooldown re-notification, a resolve).
-- notification_id is the Idempotency-Key sent to receivers. The row is re-written as delivery
-- progresses; ReplacingMergeTree(revision) keeps the newest write, so read with FINAL.
-- The worker reloads firing alerts and undelivered notifications from here on restart.
CREATE TABLE IF NOT EXISTS alerts
(
    notification_id         String,
    alert_id                String,
    rule                    LowCardinality(String),
    kind                    LowCardinality(String),
    severity                LowCardinality(String),
    status                  LowCardinality(String),
    key                     Map(String, String),
    labels                  Map(String, String),
    value                   Float64,
    threshold               Float64,
    summary                 String,
    details                 String,
    started_at              DateTime64(3, 'UTC'),
    event_at                DateTime64(3, 'UTC'),
    repeat                  UInt32,
    channels                Array(String),
    delivered_channels      Array(String),
    channel_status          Map(String, String),
    channel_attempts        Map(String, UInt32),
    attempts                UInt32,
    delivery_status         LowCardinality(String),
    last_error              String,
    revision                UInt64,
    updated_at              DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(event_at)
ORDER BY (rule, alert_id, notification_id);

-- Every delivery attempt (append-only; keyed so a re-written attempt collapses).
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    notification_id         String,
    alert_id                String,
    rule                    LowCardinality(String),
    channel                 LowCardinality(String),
    attempt                 UInt32,
    attempted_at            DateTime64(3, 'UTC'),
    outcome                 LowCardinality(String),
    http_status             UInt16,
    error                   String,
    duration_ms             Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (notification_id, channel, attempt);
