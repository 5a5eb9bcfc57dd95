"""Worker and CLI settings, read from ``LLMWATCH_*`` environment variables.

>>> Settings.from_env({"LLMWATCH_KAFKA": "10.0.0.5:9092"}).kafka_bootstrap
'10.0.0.5:9092'
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping


ROLES: dict[str, str] = {
    "all": "everything in one process: ingest, detectors, storage, alerts (the default)",
    "ingest": "calls topic -> llm_calls, dead letters; no detectors",
    "detect": "calls topic -> detectors -> verdicts and drift reports on Kafka; no ClickHouse",
    "store": "calls and detection topics -> ClickHouse, exactly once; alert rules",
}


#: The detector agents a worker can run (``LLMWATCH_DETECTORS``), in the order they are listed.
DETECTORS = ("injection", "grounding", "drift", "quality")


def _default_home() -> str:
    return str(Path.cwd() / "var")


@dataclass(frozen=True)
class Settings:
    """Everything the worker needs to know; each field has an environment variable."""

    home: str = field(default_factory=_default_home)  # LLMWATCH_HOME: local state (Kafka, chDB, Faust)
    role: str = "all"  # LLMWATCH_ROLE: all | ingest | detect | store (see ROLES)
    kafka_bootstrap: str = "127.0.0.1:9092"  # LLMWATCH_KAFKA
    clickhouse_dsn: str = ""  # LLMWATCH_CLICKHOUSE_DSN; empty = embedded chdb:///$home/clickhouse
    clickhouse_cluster: str = ""  # LLMWATCH_CLICKHOUSE_CLUSTER: migrations emit ON CLUSTER, Replicated*, Distributed
    schema_registry_url: str = ""  # LLMWATCH_SCHEMA_REGISTRY_URL; empty = schemas/registry.json
    calls_topic: str = "llm.calls"  # LLMWATCH_CALLS_TOPIC
    dead_letter_topic: str = "llm.calls.dlq"  # LLMWATCH_DEAD_LETTER_TOPIC
    otlp_topics: str = ""  # LLMWATCH_OTLP_TOPICS: Collector kafkaexporter topics, comma-separated, e.g. "otlp_spans" ("" = off)
    otlp_logs_topic: str = ""  # LLMWATCH_OTLP_LOGS_TOPIC: the Collector's logs topic, joined to the spans by trace and span id ("" = off)
    otlp_join_wait_s: float = 2.0  # LLMWATCH_OTLP_JOIN_WAIT_S: how long a span without content waits for its logs (and logs for their span)
    topic_partitions: int = 4  # LLMWATCH_TOPIC_PARTITIONS
    max_message_bytes: int = 256 * 1024  # LLMWATCH_MAX_MESSAGE_BYTES
    batch_size: int = 2000  # LLMWATCH_BATCH_SIZE: events per ClickHouse insert
    batch_within_s: float = 0.2  # LLMWATCH_BATCH_WITHIN_S: longest wait to fill a batch
    raw_ttl_days: int = 90  # LLMWATCH_RAW_TTL_DAYS
    rollup_ttl_days: int = 400  # LLMWATCH_ROLLUP_TTL_DAYS
    consumer_group: str = "llmwatch"  # LLMWATCH_CONSUMER_GROUP (Faust app id)
    web_port: int = 0  # LLMWATCH_WEB_PORT: 0 = no web server (/metrics, /healthz)
    redact: str = "emails,api_keys,cards,phones"  # LLMWATCH_REDACT: rules, "all" or "none"
    dead_letter_payload: str = "redacted"  # LLMWATCH_DEAD_LETTER_PAYLOAD: "redacted" or "original" bytes in dead letters
    detectors: str = "injection,grounding,drift,quality"  # LLMWATCH_DETECTORS: which detector agents run ("" = ingest only)
    sample_injection: float = 1.0  # LLMWATCH_SAMPLE_INJECTION: fraction of events checked
    sample_grounding: float = 1.0  # LLMWATCH_SAMPLE_GROUNDING
    sample_drift: float = 1.0  # LLMWATCH_SAMPLE_DRIFT
    sample_quality: float = 1.0  # LLMWATCH_SAMPLE_QUALITY
    cascade: int = 1  # LLMWATCH_CASCADE: 1 = embedding layers only when cheap layers are unsure
    detect_batch_size: int = 256  # LLMWATCH_DETECT_BATCH_SIZE: events per detector batch
    detect_within_s: float = 0.1  # LLMWATCH_DETECT_WITHIN_S: longest wait to fill a detector batch
    results_topic: str = "llm.detections"  # LLMWATCH_RESULTS_TOPIC ("" = do not publish)
    prompts_topic: str = "llm.prompts"  # LLMWATCH_PROMPTS_TOPIC: compacted topic `llmwatch prompts publish` writes ("" = off)
    evaluations_topic: str = ""  # LLMWATCH_EVALUATIONS_TOPIC: verdicts as OTel gen_ai.evaluation.result logs (otlp_proto), e.g. "otlp_evaluations" ("" = off)
    drift_reports_topic: str = "llm.drift_reports"  # LLMWATCH_DRIFT_REPORTS_TOPIC: detect -> store
    drift_report_interval_s: float = 60.0  # LLMWATCH_DRIFT_REPORT_INTERVAL_S
    drift_reference_size: int = 300  # LLMWATCH_DRIFT_REFERENCE_SIZE
    drift_window_size: int = 100  # LLMWATCH_DRIFT_WINDOW_SIZE
    canaries: str = ""  # LLMWATCH_CANARIES: "app=token,app2=token2" canary tokens per app
    injection_allowlist_path: str = ""  # LLMWATCH_INJECTION_ALLOWLIST: YAML {app or "*": [phrase, "re:pattern"]} the injection detector ignores
    alert_rules: str = ""  # LLMWATCH_ALERT_RULES: path of the alert rules YAML ("" = no alerting)
    alert_interval_s: float = 30.0  # LLMWATCH_ALERT_INTERVAL_S
    health_insert_failing_s: float = 30.0  # LLMWATCH_HEALTH_INSERT_FAILING_S: /healthz degraded after inserts fail this long
    health_lag_stalled_s: float = 120.0  # LLMWATCH_HEALTH_LAG_STALLED_S: ...or after the lag has not shrunk this long
    shutdown_timeout_s: float = 30.0  # LLMWATCH_SHUTDOWN_TIMEOUT_S: longest graceful stop before the worker exits anyway

    _ENV = {
        "home": "LLMWATCH_HOME",
        "role": "LLMWATCH_ROLE",
        "kafka_bootstrap": "LLMWATCH_KAFKA",
        "clickhouse_dsn": "LLMWATCH_CLICKHOUSE_DSN",
        "clickhouse_cluster": "LLMWATCH_CLICKHOUSE_CLUSTER",
        "schema_registry_url": "LLMWATCH_SCHEMA_REGISTRY_URL",
        "calls_topic": "LLMWATCH_CALLS_TOPIC",
        "dead_letter_topic": "LLMWATCH_DEAD_LETTER_TOPIC",
        "otlp_topics": "LLMWATCH_OTLP_TOPICS",
        "otlp_logs_topic": "LLMWATCH_OTLP_LOGS_TOPIC",
        "otlp_join_wait_s": "LLMWATCH_OTLP_JOIN_WAIT_S",
        "topic_partitions": "LLMWATCH_TOPIC_PARTITIONS",
        "max_message_bytes": "LLMWATCH_MAX_MESSAGE_BYTES",
        "batch_size": "LLMWATCH_BATCH_SIZE",
        "batch_within_s": "LLMWATCH_BATCH_WITHIN_S",
        "raw_ttl_days": "LLMWATCH_RAW_TTL_DAYS",
        "rollup_ttl_days": "LLMWATCH_ROLLUP_TTL_DAYS",
        "consumer_group": "LLMWATCH_CONSUMER_GROUP",
        "web_port": "LLMWATCH_WEB_PORT",
        "redact": "LLMWATCH_REDACT",
        "dead_letter_payload": "LLMWATCH_DEAD_LETTER_PAYLOAD",
        "detectors": "LLMWATCH_DETECTORS",
        "sample_injection": "LLMWATCH_SAMPLE_INJECTION",
        "sample_grounding": "LLMWATCH_SAMPLE_GROUNDING",
        "sample_drift": "LLMWATCH_SAMPLE_DRIFT",
        "sample_quality": "LLMWATCH_SAMPLE_QUALITY",
        "cascade": "LLMWATCH_CASCADE",
        "detect_batch_size": "LLMWATCH_DETECT_BATCH_SIZE",
        "detect_within_s": "LLMWATCH_DETECT_WITHIN_S",
        "results_topic": "LLMWATCH_RESULTS_TOPIC",
        "prompts_topic": "LLMWATCH_PROMPTS_TOPIC",
        "evaluations_topic": "LLMWATCH_EVALUATIONS_TOPIC",
        "drift_reports_topic": "LLMWATCH_DRIFT_REPORTS_TOPIC",
        "drift_report_interval_s": "LLMWATCH_DRIFT_REPORT_INTERVAL_S",
        "drift_reference_size": "LLMWATCH_DRIFT_REFERENCE_SIZE",
        "drift_window_size": "LLMWATCH_DRIFT_WINDOW_SIZE",
        "canaries": "LLMWATCH_CANARIES",
        "injection_allowlist_path": "LLMWATCH_INJECTION_ALLOWLIST",
        "alert_rules": "LLMWATCH_ALERT_RULES",
        "alert_interval_s": "LLMWATCH_ALERT_INTERVAL_S",
        "shutdown_timeout_s": "LLMWATCH_SHUTDOWN_TIMEOUT_S",
        "health_insert_failing_s": "LLMWATCH_HEALTH_INSERT_FAILING_S",
        "health_lag_stalled_s": "LLMWATCH_HEALTH_LAG_STALLED_S",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Settings from the environment; a malformed number names the variable to fix."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            var = cls._ENV.get(f.name)
            if var is None or var not in env:
                continue
            raw = env[var]
            kind = type(getattr(cls(), f.name))
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ValueError(f"{var}={raw!r} is not a valid {kind.__name__}; fix the environment variable") from None
        return cls(**values)

    @property
    def dsn(self) -> str:
        """The ClickHouse DSN in use: the configured one or the embedded engine under ``home``."""
        return self.clickhouse_dsn or f"chdb://{Path(self.home).resolve() / 'clickhouse'}"

    @property
    def group_id(self) -> str:
        """The Kafka consumer group (and Faust app id) of this role's workers.

        Each role reads its topics in a group of its own, so that detect workers share the calls
        topic's partitions among themselves and never with the store process.

        >>> Settings(role="detect").group_id, Settings().group_id
        ('llmwatch-detect', 'llmwatch')
        """
        if self.role not in ROLES:
            raise ValueError(f"LLMWATCH_ROLE={self.role!r} is not a role; fix: use one of {', '.join(ROLES)}")
        return self.consumer_group if self.role == "all" else f"{self.consumer_group}-{self.role}"

    @property
    def ingest_group(self) -> str:
        """The consumer group of the batch ingest path (calls topic -> ``llm_calls``), shared by
        the ``all``, ``ingest`` and ``store`` roles: two of them split the partitions, never
        store a call twice."""
        return f"{self.consumer_group}-ingest"

    @property
    def calls_groups(self) -> tuple[str, ...]:
        """The consumer groups that commit the calls topic in this role: caught up = all at the end.

        >>> Settings().calls_groups, Settings(role="detect").calls_groups, Settings(detectors="").calls_groups
        (('llmwatch-ingest', 'llmwatch'), ('llmwatch-detect',), ('llmwatch-ingest',))
        """
        groups = [self.ingest_group] if self.role in ("all", "ingest", "store") else []
        if self.role in ("all", "detect") and self.detector_names:
            groups.append(self.group_id)
        return tuple(groups)

    @property
    def needs_clickhouse(self) -> bool:
        """Detect workers publish verdicts and reports to Kafka and never open ClickHouse."""
        return self.role != "detect"

    @property
    def detector_names(self) -> tuple[str, ...]:
        names = tuple(n.strip() for n in self.detectors.split(",") if n.strip())
        unknown = set(names) - set(DETECTORS)
        if unknown:
            raise ValueError(f"LLMWATCH_DETECTORS has unknown detector(s) {sorted(unknown)}; fix: use only {', '.join(DETECTORS)}")
        return names

    def canary_tokens(self) -> dict[str, list[str]]:
        """``LLMWATCH_CANARIES`` parsed: app -> tokens."""
        out: dict[str, list[str]] = {}
        for item in filter(None, (p.strip() for p in self.canaries.split(","))):
            app, sep, token = item.partition("=")
            if not sep or not token:
                raise ValueError(f"LLMWATCH_CANARIES entry {item!r} must look like app=token; fix: the variable")
            out.setdefault(app, []).append(token)
        return out

    def injection_allowlist(self) -> dict[str, list[str]]:
        """``LLMWATCH_INJECTION_ALLOWLIST`` read: app -> phrases and ``re:`` patterns ({} when unset)."""
        if not self.injection_allowlist_path:
            return {}
        import yaml

        path = Path(self.injection_allowlist_path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"LLMWATCH_INJECTION_ALLOWLIST {str(path)!r} cannot be read ({exc}); "
                             "fix: point it at a YAML file mapping app names to lists of phrases") from None
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise ValueError(f"LLMWATCH_INJECTION_ALLOWLIST {str(path)!r} must map app names (or \"*\") to lists "
                             "of phrases; fix: e.g. `support-bot: [\"reply to this email\"]`")
        return {str(k): [str(x) for x in v] for k, v in data.items()}

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables (to start a worker subprocess)."""
        return {var: str(getattr(self, name)) for name, var in self._ENV.items()}
