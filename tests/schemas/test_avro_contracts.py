"""The event contract: versions stay readable, ids stay unique, and old data still decodes."""
from __future__ import annotations

import json

import io

import avro.schema
import fastavro
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from schemas import load_schema, local_schema_ids, schema_versions, subject_ids
from streams.devtools.generator import Generator
from streams.pipeline.codec import HEADER, EventCodec, added_fields, without_timestamp_types

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


def test_older_writers_read_without_resolution_give_what_resolution_gives():
    """The codec reads an older writer's messages with the writer alone and adds the newer
    fields' defaults; that must equal Avro schema resolution into the latest schema."""
    codec = EventCodec()
    latest = load_schema(VERSIONS[-1][1])
    reader = fastavro.parse_schema(without_timestamp_types(latest), _force=True)
    checked = set()
    for msg in Generator(seed=3, rate=1e9).messages(300, malformed_ratio=0.0, json_ratio=0.0, clock_ms=lambda: 1_764_000_000_000):
        _, schema_id = HEADER.unpack_from(msg.value)
        writer = codec.registry.get(schema_id)
        assert added_fields(writer, latest) is not None  # every shipped version takes the fast path
        buf = io.BytesIO(msg.value)
        buf.seek(HEADER.size)
        resolved = fastavro.schemaless_reader(buf, fastavro.parse_schema(without_timestamp_types(writer), _force=True), reader)
        assert codec.decode(msg.value).record == resolved
        checked.add(schema_id)
    record = codec.decode(codec.encode_json({"event_id": "e", "timestamp_ms": 5, "service_name": "s", "request_model": "m"})).record
    for schema_id in set(subject_ids()) - checked:  # versions the generator no longer writes
        fields = {f["name"] for f in codec.registry.get(schema_id)["fields"]}
        old = codec.encode_confluent({k: v for k, v in record.items() if k in fields}, schema_id=schema_id)
        assert codec.decode(old).record == record
        checked.add(schema_id)
    assert checked == set(subject_ids())


def test_a_writer_that_differs_in_more_than_added_fields_is_resolved():
    latest = load_schema(VERSIONS[-1][1])
    fields = latest["fields"]
    assert next(f["type"] for f in fields if f["name"] == "input_tokens") != "int"
    promoted = {**latest, "fields": [{**f, "type": "int"} if f["name"] == "input_tokens" else f for f in fields]}
    renamed = {**latest, "fields": [{**f, "aliases": ["old_id"]} if f["name"] == "event_id" else f for f in fields]}
    extra = {**latest, "fields": fields + [{"name": "tenant", "type": "string"}]}
    assert added_fields(latest, latest) == ()
    assert added_fields(promoted, latest) is None  # int -> long is a promotion: resolution does it
    assert added_fields(latest, renamed) is None
    assert added_fields(extra, latest) is None
