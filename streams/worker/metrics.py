"""Prometheus metrics of one worker (served on ``/metrics`` when ``LLMWATCH_WEB_PORT`` is set)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    """One registry per worker, so tests can build several without global clashes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("llmwatch_events_total", "Messages processed, by agent.", ["agent"], registry=self.registry)
        self.dead_letters = Counter(
            "llmwatch_dead_letters_total", "Messages sent to the dead-letter topic, by reason.", ["reason"], registry=self.registry
        )
        self.repaired_strings = Counter(
            "llmwatch_repaired_strings_total",
            "Strings stored with lone surrogates replaced by U+FFFD (JSON escapes no UTF-8 encoder accepts).",
            registry=self.registry,
        )
        self.rows_written = Counter(
            "llmwatch_rows_written_total", "Rows inserted into ClickHouse, by table.", ["table"], registry=self.registry
        )
        self.rows_rejected = Counter(
            "llmwatch_rows_rejected_total",
            "Rows ClickHouse refused for their values (isolated by bisecting the batch; calls are dead-lettered).",
            ["table"], registry=self.registry,
        )
        self.duplicates_dropped = Counter(
            "llmwatch_duplicate_rows_dropped_total",
            "Rows of an event already stored or repeated in the batch (producer-side duplicates), not inserted.",
            ["table"], registry=self.registry,
        )
        self.replays_dropped = Counter(
            "llmwatch_replayed_rows_dropped_total", "Rows already stored before a restart, not inserted again.",
            ["table"], registry=self.registry,
        )
        self.detections = Counter(
            "llmwatch_detections_total", "Verdicts, by detector and flagged.", ["detector", "flagged"], registry=self.registry
        )
        self.detector_errors = Counter(
            "llmwatch_detector_errors_total", "Events a detector raised on (skipped, logged).", ["detector"],
            registry=self.registry,
        )
        self.detector_seconds = Histogram(
            "llmwatch_detector_batch_seconds",
            "Time to run one detector group on one batch (not counting the wait for the detector thread).",
            ["agent"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=self.registry,
        )
        self.detector_event_seconds = Histogram(
            "llmwatch_detector_event_seconds", "Detector time per event (batch time / batch size).", ["agent"],
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1), registry=self.registry,
        )
        self.insert_seconds = Histogram(
            "llmwatch_clickhouse_insert_seconds", "ClickHouse insert time per batch.", ["table"], registry=self.registry
        )
        self.degraded = Gauge(
            "llmwatch_degraded", "1 while /healthz reports degraded (inserts failing, or lag not shrinking).",
            registry=self.registry,
        )
        self.insert_failing_seconds = Gauge(
            "llmwatch_insert_failing_seconds", "How long the insert being retried has been failing (0 when none is).",
            ["table"], registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "llmwatch_consumer_lag", "Messages of the calls topic not yet committed.", ["partition"], registry=self.registry
        )
        self.alert_notifications = Counter(
            "llmwatch_alert_notifications_total", "Alert notifications created, by status.", ["status"], registry=self.registry
        )
        self.alert_deliveries = Counter(
            "llmwatch_alert_delivery_attempts_total", "Webhook delivery attempts, by outcome.", ["outcome"], registry=self.registry
        )
        self.drift_reports = Counter(
            "llmwatch_drift_reports_total", "Drift report rows written, by drifted.", ["drifted"], registry=self.registry
        )
