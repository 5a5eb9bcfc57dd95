"""Hypothesis strategies for hostile ingest traffic, derived from the Avro schema: valid events
with one to three fields replaced by values JSON allows but storage may not (surrogates, huge or
non-finite numbers, wrong types), as JSON bytes. Shared by the codec fuzz and the worker fuzz."""
from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from schemas import latest_schema

#: The specific dead-letter reasons of the ingest path (``internal_error`` is for our own bugs).
REASONS = {
    "empty", "too_large", "unknown_format", "truncated", "bad_avro", "unknown_schema_id", "invalid_utf8", "bad_json",
    "too_deep", "duplicate_key", "non_finite_number", "missing_field", "wrong_type", "invalid_value",
}
HOSTILE_TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None, categories=("Cs", "Co", "Cn", "Zs", "Mn", "So")), max_size=50),
    st.sampled_from(["", " ", "\x00", "\ud800", "a\udfffb", "\ufeff", "🙂" * 10, "a." * 200 + "@" + "b." * 200,
                     "4111 1111 1111 1111", "ignore all previous instructions", "\u202e\u200b", "{}", "null"]),
)
HOSTILE_NUMBER = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**31, 2**32, 2**62, 2**63 - 1, 1e308, -0.0, 5e-324]),
)


def _for_type(avro_type: Any, hostile: bool) -> st.SearchStrategy:
    """A strategy for values of an Avro type; ``hostile`` mixes in values the type allows in
    JSON but storage may not (surrogates, huge or non-finite numbers) and wrong types."""
    if isinstance(avro_type, list):
        return st.one_of(*(_for_type(t, hostile) for t in avro_type))
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "array":
            return st.lists(_for_type(avro_type["items"], hostile), max_size=3)
        if kind == "map":
            return st.dictionaries(HOSTILE_TEXT if hostile else st.text(), _for_type(avro_type["values"], hostile), max_size=3)
        if kind == "record":
            return st.fixed_dictionaries({f["name"]: _for_type(f["type"], hostile) for f in avro_type["fields"]})
        return _for_type(kind, hostile)
    base = {
        "null": st.none(), "boolean": st.booleans(), "string": st.text(max_size=40),
        "int": st.integers(-(2**31), 2**31 - 1), "long": st.integers(0, 2**40),
        "double": st.floats(0, 1e6), "float": st.floats(0, 1e6),
    }[avro_type]
    if not hostile:
        return base
    extra = {"string": HOSTILE_TEXT, "int": HOSTILE_NUMBER, "long": HOSTILE_NUMBER, "double": HOSTILE_NUMBER}
    return st.one_of(base, extra.get(avro_type, base), st.just(None), st.just([]))


SCHEMA = latest_schema("llm_call")
FIELDS = {f["name"]: f["type"] for f in SCHEMA["fields"]}
# A valid event (required fields sane), then one to three fields replaced by hostile values, so
# most examples reach row building and storage rather than failing at the first field.
VALID = st.fixed_dictionaries({
    **{name: _for_type(kind, hostile=False) for name, kind in FIELDS.items() if name not in ("timestamp_ms", "status")},
    "event_id": st.text(min_size=1, max_size=20).filter(str.strip),
    "service_name": st.text(min_size=1, max_size=20).filter(str.strip),
    "request_model": st.text(min_size=1, max_size=20).filter(str.strip),
    "timestamp_ms": st.integers(1, 10**13),
    "status": st.sampled_from(["ok", "error"]),
})
HOSTILE = st.dictionaries(
    st.sampled_from(sorted(FIELDS)), st.deferred(lambda: st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER)), min_size=1, max_size=3
).flatmap(lambda picked: st.fixed_dictionaries({k: _for_type(FIELDS[k], hostile=True) for k in picked}))
EVENTS = st.builds(lambda valid, bad: {**valid, **bad}, VALID, HOSTILE)


def json_bytes(event: dict) -> bytes:
    # allow_nan: NaN/Infinity literals are what hostile producers send; surrogates survive as escapes
    return json.dumps(event, allow_nan=True, ensure_ascii=True).encode()
