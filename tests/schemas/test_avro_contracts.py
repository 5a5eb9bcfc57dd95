"""The event contract: versions stay readable, ids stay unique, and old data still decodes."""
from __future__ import annotations

import json

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from schemas import load_schema, local_schema_ids, schema_versions, subject_ids
from streams.pipeline.codec import EventCodec

VERSIONS = schema_versions("llm_call")


def parse(filename: str) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(load_schema(filename)))


@pytest.mark.parametrize(
    "older,newer",
    [(old, new) for i, (_, old) in enumerate(VERSIONS) for _, new in VERSIONS[i + 1 :]],
)
def test_every_newer_version_reads_data_written_by_older_ones(older, newer):
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader=parse(newer), writer=parse(older))
    assert result.compatibility is SchemaCompatibilityType.compatible, result.messages


def test_checker_catches_a_breaking_change():
    """The guard above can fail: a required field added without a default is incompatible."""
    latest = load_schema(VERSIONS[-1][1])
    broken = {**latest, "fields": latest["fields"] + [{"name": "tenant", "type": "string"}]}
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        reader=avro.schema.parse(json.dumps(broken)), writer=parse(VERSIONS[0][1])
    )
    assert result.compatibility is SchemaCompatibilityType.incompatible


def test_at_least_two_versions_and_registry_lists_each_once():
    assert len(VERSIONS) >= 2
    assert sorted(subject_ids().values()) == sorted(name for _, name in VERSIONS)
    assert len(set(local_schema_ids().values())) == len(local_schema_ids())


def test_data_written_with_v1_decodes_into_the_latest_shape_with_defaults():
    codec = EventCodec()
    v1_event = {"event_id": "old-1", "timestamp_ms": 1_700_000_000_000, "service_name": "legacy", "request_model": "m"}
    record = codec.decode(codec.encode_json(v1_event)).record
    v1_fields = {f["name"] for f in load_schema("llm_call.v1.avsc")["fields"]}
    raw_v1 = codec.encode_confluent({k: v for k, v in record.items() if k in v1_fields}, schema_id=1)
    decoded = codec.decode(raw_v1)
    assert decoded.schema_id == 1
    latest_fields = {f["name"]: f for f in load_schema(VERSIONS[-1][1])["fields"]}
    for name in latest_fields.keys() - v1_fields:
        assert decoded.record[name] == latest_fields[name]["default"]
    assert decoded.record["event_id"] == "old-1"
