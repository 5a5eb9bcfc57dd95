"""Worker and CLI settings, read from ``LLMWATCH_*`` environment variables.

>>> Settings.from_env({"LLMWATCH_KAFKA": "10.0.0.5:9092"}).kafka_bootstrap
'10.0.0.5:9092'
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping


def _default_home() -> str:
    return str(Path.cwd() / "var")


@dataclass(frozen=True)
class Settings:
    """Everything the worker needs to know; each field has an environment variable."""

    home: str = field(default_factory=_default_home)  # LLMWATCH_HOME: local state (Kafka, chDB, Faust)
    kafka_bootstrap: str = "127.0.0.1:9092"  # LLMWATCH_KAFKA
    clickhouse_dsn: str = ""  # LLMWATCH_CLICKHOUSE_DSN; empty = embedded chdb:///$home/clickhouse
    schema_registry_url: str = ""  # LLMWATCH_SCHEMA_REGISTRY_URL; empty = schemas/registry.json
    calls_topic: str = "llm.calls"  # LLMWATCH_CALLS_TOPIC
    dead_letter_topic: str = "llm.calls.dlq"  # LLMWATCH_DEAD_LETTER_TOPIC
    topic_partitions: int = 4  # LLMWATCH_TOPIC_PARTITIONS
    max_message_bytes: int = 256 * 1024  # LLMWATCH_MAX_MESSAGE_BYTES
    batch_size: int = 2000  # LLMWATCH_BATCH_SIZE: events per ClickHouse insert
    batch_within_s: float = 0.5  # LLMWATCH_BATCH_WITHIN_S: longest wait to fill a batch
    raw_ttl_days: int = 90  # LLMWATCH_RAW_TTL_DAYS
    rollup_ttl_days: int = 400  # LLMWATCH_ROLLUP_TTL_DAYS
    consumer_group: str = "llmwatch"  # LLMWATCH_CONSUMER_GROUP (Faust app id)
    web_port: int = 0  # LLMWATCH_WEB_PORT: 0 = no web server

    _ENV = {
        "home": "LLMWATCH_HOME",
        "kafka_bootstrap": "LLMWATCH_KAFKA",
        "clickhouse_dsn": "LLMWATCH_CLICKHOUSE_DSN",
        "schema_registry_url": "LLMWATCH_SCHEMA_REGISTRY_URL",
        "calls_topic": "LLMWATCH_CALLS_TOPIC",
        "dead_letter_topic": "LLMWATCH_DEAD_LETTER_TOPIC",
        "topic_partitions": "LLMWATCH_TOPIC_PARTITIONS",
        "max_message_bytes": "LLMWATCH_MAX_MESSAGE_BYTES",
        "batch_size": "LLMWATCH_BATCH_SIZE",
        "batch_within_s": "LLMWATCH_BATCH_WITHIN_S",
        "raw_ttl_days": "LLMWATCH_RAW_TTL_DAYS",
        "rollup_ttl_days": "LLMWATCH_ROLLUP_TTL_DAYS",
        "consumer_group": "LLMWATCH_CONSUMER_GROUP",
        "web_port": "LLMWATCH_WEB_PORT",
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

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables (to start a worker subprocess)."""
        return {var: str(getattr(self, name)) for name, var in self._ENV.items()}
