"""Property-based fuzzing of the ingest path, from the Avro schema plus hostile values.

Invariant: every message either becomes a row that storage can encode (every string valid
UTF-8, every float finite, the timestamp in DateTime64's range) or is dead-lettered with a
specific reason; nothing raises, and ``internal_error`` (our own bugs) never appears.
"""
from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.pipeline.codec import EventCodec
from streams.pipeline.ingest import IngestProcessor, RawMessage
from streams.pipeline.redaction import Redactor
from tests.streams.hostile import EVENTS, REASONS, VALID, json_bytes

CODEC = EventCodec()
PROCESSOR = IngestProcessor(CODEC, "calls", Redactor.from_names("all"))


def _storable(row: list) -> None:
    for value in row:
        if isinstance(value, str):
            value.encode("utf-8")  # raises on a surrogate
        elif isinstance(value, float):
            assert math.isfinite(value), row
        elif isinstance(value, (list, tuple)):
            _storable(list(value))
        elif isinstance(value, dict):
            _storable(list(value.keys()) + list(value.values()))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=EVENTS, avro=st.booleans(), key=st.one_of(st.none(), st.binary(max_size=64)))
def test_every_message_is_stored_or_dead_lettered_with_a_specific_reason(event: dict, avro: bool, key: bytes | None) -> None:
    raw = json_bytes(event)
    if avro:  # the same event as Confluent Avro where it fits the schema (else it stays JSON)
        try:
            raw = CODEC.encode_confluent(CODEC.decode(raw).record)
        except Exception:
            pass
    batch = PROCESSOR.process([RawMessage(key, raw, 0, 1)])
    assert len(batch.rows) + len(batch.dead_letters) == 1
    for dead in batch.dead_letters:
        assert dead.reason in REASONS, (dead.reason, dead.error)
    for row in batch.rows:
        _storable(row)


@settings(max_examples=300, deadline=None)
@given(valid=VALID)
def test_valid_events_are_stored(valid: dict) -> None:
    batch = PROCESSOR.process([RawMessage(None, json_bytes(valid), 0, 1)])
    assert [d.reason for d in batch.dead_letters] in ([], ["invalid_value"]), batch.dead_letters  # tokens may exceed 2^32
    for row in batch.rows:
        _storable(row)


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: ("{" + t).encode("utf-8", "surrogatepass"))))
def test_random_bytes_are_dead_lettered_never_raised(raw: bytes) -> None:
    batch = PROCESSOR.process([RawMessage(None, raw, 0, 1)])
    assert len(batch.rows) + len(batch.dead_letters) == 1
    assert all(d.reason in REASONS for d in batch.dead_letters), [(d.reason, d.error) for d in batch.dead_letters]
