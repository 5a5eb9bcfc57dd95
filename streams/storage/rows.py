"""Map decoded events to ClickHouse rows (column order and types stated once, here)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from schemas import PROMPT_LABEL_ATTRIBUTE
from streams.pipeline.redaction import Redactor

UTC = dt.timezone.utc
NO_REDACTION = Redactor(())

LLM_CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "String"),
    ("timestamp", "DateTime64(3, 'UTC')"),
    ("service_name", "LowCardinality(String)"),
    ("deployment_environment", "LowCardinality(String)"),
    ("provider_name", "LowCardinality(String)"),
    ("operation_name", "LowCardinality(String)"),
    ("request_model", "LowCardinality(String)"),
    ("response_model", "LowCardinality(String)"),
    ("prompt_name", "LowCardinality(String)"),
    ("prompt_version", "LowCardinality(String)"),
    ("prompt_template_hash", "String"),
    ("input_roles", "Array(LowCardinality(String))"),
    ("input_contents", "Array(String)"),
    ("system_instructions", "String"),
    ("output_text", "String"),
    ("finish_reason", "LowCardinality(String)"),
    ("retrieved_context", "Array(String)"),
    ("retrieval_query", "String"),
    ("input_tokens", "UInt32"),
    ("output_tokens", "UInt32"),
    ("cached_input_tokens", "UInt32"),
    ("latency_ms", "Float64"),
    ("time_to_first_token_ms", "Nullable(Float64)"),
    ("cost_usd", "Nullable(Float64)"),
    ("status", "LowCardinality(String)"),
    ("error_type", "LowCardinality(String)"),
    ("user_id", "String"),
    ("conversation_id", "String"),
    ("trace_id", "String"),
    ("span_id", "String"),
    ("attributes", "Map(String, String)"),
    ("schema_id", "UInt32"),
    ("kafka_topic", "LowCardinality(String)"),
    ("kafka_partition", "UInt32"),
    ("kafka_offset", "UInt64"),
)  # ingested_at is left to ClickHouse's DEFAULT now64(3): the moment the insert lands


def to_datetime(ms: int) -> dt.datetime:
    """Epoch milliseconds as an aware UTC datetime (what clickhouse-connect expects)."""
    return dt.datetime.fromtimestamp(ms / 1000.0, tz=UTC)


#: Free-text columns, redacted before they are stored. Identifiers (service, model, prompt
#: version, user and trace ids) are stored as sent: they are keys the dashboards group by.
REDACTED_COLUMNS = (
    "input_contents", "system_instructions", "output_text", "retrieved_context", "retrieval_query", "attributes",
)


def llm_call_row(
    record: Mapping[str, Any], schema_id: int, topic: str, partition: int, offset: int, redactor: Redactor = NO_REDACTION
) -> list[Any]:
    """One ``llm_calls`` row, in :data:`LLM_CALL_COLUMNS` order, with free text redacted."""
    messages = record["input_messages"]
    contexts = record["retrieved_context"]
    attributes = record["attributes"]
    label = record.get("prompt_label")
    if label and PROMPT_LABEL_ATTRIBUTE not in attributes:
        attributes = {**attributes, PROMPT_LABEL_ATTRIBUTE: label}
    # One redact_many call per record: its guards run once over all the record's texts.
    texts = redactor.redact_many([
        *(m["content"] for m in messages),
        *contexts,
        *attributes.values(),
        record["system_instructions"] or "",
        record["output_text"] or "",
        record["retrieval_query"] or "",
    ])
    n_msg, n_ctx = len(messages), len(contexts)
    n_attr = n_msg + n_ctx + len(attributes)
    system, output, query = texts[n_attr:]
    ts = record["timestamp_ms"]
    return [
        record["event_id"],
        ts if isinstance(ts, dt.datetime) else to_datetime(ts),
        record["service_name"],
        record["deployment_environment"],
        record["provider_name"],
        record["operation_name"],
        record["request_model"],
        record["response_model"],
        record["prompt_name"],
        record["prompt_version"],
        record["prompt_template_hash"],
        [m["role"] for m in messages],
        texts[:n_msg],
        system,
        output,
        record["finish_reason"] or "",
        texts[n_msg : n_msg + n_ctx],
        query,
        record["input_tokens"],
        record["output_tokens"],
        record["cached_input_tokens"],
        record["latency_ms"],
        record["time_to_first_token_ms"],
        record["cost_usd"],
        record["status"],
        record["error_type"] or "",
        record["user_id"] or "",
        record["conversation_id"] or "",
        record["trace_id"] or "",
        record["span_id"] or "",
        dict(zip(attributes, texts[n_msg + n_ctx : n_attr])),
        schema_id,
        topic,
        partition,
        offset,
    ]
