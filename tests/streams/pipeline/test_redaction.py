"""Redaction of PII and secrets before storage."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.pipeline.detection import DetectionRunner, Positioned
from streams.pipeline.redaction import Redactor
from streams.storage.rows import LLM_CALL_COLUMNS, llm_call_row
from detectors.base import Detector, Verdict


@pytest.mark.parametrize(
    "text,expected",
    [
        ("write to jane.doe+x@mail.example.org today", "write to [EMAIL] today"),
        ("card 4111-1111-1111-1111 ok", "card [CARD] ok"),
        ("order 1234-5678-9012-3456 is not a card", "order 1234-5678-9012-3456 is not a card"),  # fails Luhn
        ("call 415-555-0132 please", "call [PHONE] please"),
        ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123", "key [API_KEY]"),
        ("aws AKIAABCDEFGHIJKLMNOP", "aws [API_KEY]"),
        ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer [API_KEY]"),
        ("version 2.3.1 released in 2024", "version 2.3.1 released in 2024"),
    ],
)
def test_rules_redact_what_they_should_and_nothing_else(text, expected):
    assert Redactor().redact(text) == expected


def test_rule_selection_and_bad_names():
    assert Redactor.from_names("none").redact("a@b.co") == "a@b.co"
    assert Redactor.from_names("emails").redact("a@b.co 415-555-0132") == "[EMAIL] 415-555-0132"
    with pytest.raises(ValueError, match="valid: emails"):
        Redactor.from_names("emails,ssn")


class EchoDetector(Detector):
    """Flags prompts containing an email address: proves detectors see the original text."""

    name = "echo"
    version = "1"

    def detect(self, event):
        seen = "@" in event.prompt
        return Verdict(self.name, self.version, float(seen), seen, 0.5, {"prompt": event.prompt})


def record(prompt: str) -> dict:
    return {
        "event_id": "e1", "timestamp_ms": 1_800_000_000_000, "service_name": "a", "deployment_environment": "prod",
        "provider_name": "", "operation_name": "chat", "request_model": "m", "response_model": "", "prompt_name": "",
        "prompt_version": "v1", "prompt_template_hash": "", "input_messages": [{"role": "user", "content": prompt}],
        "system_instructions": None, "output_text": "mail me at bob@corp.io", "finish_reason": None,
        "retrieved_context": ["call 415-555-0132"], "retrieval_query": None, "input_tokens": 1, "output_tokens": 1,
        "cached_input_tokens": 0, "latency_ms": 1.0, "time_to_first_token_ms": None, "cost_usd": None, "status": "ok",
        "error_type": None, "user_id": None, "conversation_id": None, "trace_id": None, "span_id": None, "attributes": {},
    }


def test_stored_rows_are_redacted_but_detectors_see_the_original():
    redactor = Redactor()
    rec = record("my email is jane@example.com")
    row = dict(zip([c for c, _ in LLM_CALL_COLUMNS], llm_call_row(rec, 2, "t", 0, 1, redactor)))
    assert row["input_contents"] == ["my email is [EMAIL]"]
    assert row["output_text"] == "mail me at [EMAIL]"
    assert row["retrieved_context"] == ["call [PHONE]"]
    out = DetectionRunner([EchoDetector()], "t", redactor).run([Positioned(rec, 0, 1)])
    (_, verdict), = out.verdicts
    assert verdict.flagged  # the detector saw the address
    evidence = out.rows[0][7]
    assert "jane@example.com" not in evidence and "[EMAIL]" in evidence  # stored evidence is redacted


# -- every stored or published text field -------------------------------------------------------

SECRET = "mail bob@example.com or card 4111 1111 1111 1111"


def _event_with_pii_everywhere() -> dict:
    import time

    return {
        "event_id": "e1", "timestamp_ms": int(time.time() * 1000), "service_name": "svc", "request_model": "m",
        "input_messages": [{"role": "user", "content": SECRET}], "system_instructions": SECRET,
        "output_text": SECRET, "retrieved_context": [SECRET, "clean"], "retrieval_query": SECRET,
        "attributes": {"note": SECRET},
    }


def _flatten(value) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k} {_flatten(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " ".join(_flatten(v) for v in value)
    return str(value)


@pytest.mark.parametrize("column", __import__("streams.storage.rows", fromlist=["REDACTED_COLUMNS"]).REDACTED_COLUMNS)
def test_each_free_text_column_is_redacted_before_storage(column: str) -> None:
    from streams.pipeline.codec import EventCodec

    record = EventCodec().decode(EventCodec.encode_json(_event_with_pii_everywhere())).record
    row = llm_call_row(record, 0, "calls", 0, 1, Redactor())
    stored = _flatten(row[[name for name, _ in LLM_CALL_COLUMNS].index(column)])
    assert "[EMAIL]" in stored and "[CARD]" in stored
    assert "bob@example.com" not in stored and "4111 1111" not in stored


def test_dead_letters_publish_redacted_bytes_unless_the_original_is_asked_for() -> None:
    from streams.pipeline.codec import EventCodec
    from streams.pipeline.ingest import IngestProcessor, RawMessage

    bad = EventCodec.encode_json({**_event_with_pii_everywhere(), "latency_ms": "slow"})  # wrong_type
    msg = RawMessage(b"user bob@example.com", bad, 0, 7)
    redacted = IngestProcessor(EventCodec(), "calls", Redactor()).process([msg]).dead_letters[0]
    assert redacted.reason == "wrong_type"
    assert b"bob@example.com" not in redacted.value and b"4111 1111" not in redacted.value
    assert b"[EMAIL]" in redacted.value and redacted.key == b"user [EMAIL]"
    original = IngestProcessor(EventCodec(), "calls", Redactor(), dead_letter_payload="original").process([msg])
    assert original.dead_letters[0].value == bad and original.dead_letters[0].key == msg.key
    with pytest.raises(ValueError, match="LLMWATCH_DEAD_LETTER_PAYLOAD"):
        IngestProcessor(EventCodec(), "calls", Redactor(), dead_letter_payload="plain")


_PIECES = st.sampled_from([
    "bob@example.com", "4111 1111 1111 1111", "4111-1111-1111-1112", "+1 (415) 555-0132", "415", "555-0132",
    "sk-abcdefghijklmnopqrstuvwx", "Bearer abcdefghijklmnop1234", "AKIAABCDEFGHIJKLMNOP", "@", "-", " ", "1", "x",
    "ghp_", "\x00", "(", ")", "+",
])
_TEXTS = st.lists(st.lists(_PIECES, max_size=12).map("".join) | st.text(max_size=40), max_size=8)


@settings(max_examples=400, deadline=None)
@given(texts=_TEXTS, rules=st.sampled_from(["all", "emails,cards", "phones", "api_keys,phones", "cards"]))
def test_redacting_a_records_texts_together_equals_redacting_each(texts: list[str], rules: str) -> None:
    """The per-record path (one guard check over NUL-joined texts) changes nothing: pieces that
    only make a match across two texts, or a NUL inside a text, redact exactly as one at a time."""
    redactor = Redactor.from_names(rules)
    assert redactor.redact_many(texts) == [redactor.redact(t) for t in texts]


_GUARDED = st.lists(
    st.sampled_from([
        "+1 (415) 555-0132", "٤١٥-٥٥٥-٠١٣٢", "４１５ ５５５ ０１３２", "ghp_" + "a" * 36, "xoxb-1234567890", "gho_", "xox",
        "bearer abcdefghijklmnop1234", "BEARER", "sk-" + "b" * 24, "AIza" + "c" * 35, "high", "right", "é", " ", "-", "1", "(",
    ]),
    max_size=10,
).map("".join) | st.text(max_size=60)


@settings(max_examples=400, deadline=None)
@given(text=_GUARDED)
def test_the_cheap_guards_never_skip_a_text_the_full_rule_would_change(text: str) -> None:
    """A guard only saves work: with or without it, phones and keys redact the same (ASCII text
    takes the [0-9] guard, other text the Unicode one)."""
    from streams.pipeline.redaction import _API_KEY, _BEARER, _PHONE, RULES

    assert RULES["phones"](text) == _PHONE.sub("[PHONE]", text)
    assert RULES["api_keys"](text) == _BEARER.sub(r"\1[API_KEY]", _API_KEY.sub("[API_KEY]", text))
