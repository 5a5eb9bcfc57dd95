"""The quality checks on real-looking outputs, and refusal accuracy on the dev set (LOSO and in-sample)."""
from __future__ import annotations

import doctest
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from detectors.base import Event
from detectors.quality import CHECKS, QualityDetector, RefusalDetector, otel_results
from detectors.quality import degenerate as degenerate_mod
from detectors.quality import detector as detector_mod
from detectors.quality import fmt, language, pii, refusal, relevance, result, text, truncation
from detectors.quality.degenerate import degenerate
from detectors.quality.fmt import check_format
from detectors.quality.language import check_language, detect_language
from detectors.quality.pii import check_pii, scan_pii
from detectors.quality.truncation import truncation as truncation_eval
from detectors.training import refusal as training_mod

ROOT = Path(__file__).resolve().parents[2]
EVAL_DIR = Path(os.environ.get("LLMWATCH_EVAL_DIR") or ROOT.parent / "shared" / "eval")
REFUSAL_DEV = EVAL_DIR / "refusal_dev.jsonl"
ACCURACY_FLOOR, F1_FLOOR = 0.93, 0.92  # the issue's bar for unseen models


@pytest.mark.parametrize("mod", [degenerate_mod, detector_mod, fmt, language, pii, refusal, relevance, result, text,
                                 truncation, training_mod], ids=lambda m: m.__name__.split(".", 1)[-1])
def test_doctests(mod) -> None:
    assert doctest.testmod(mod).failed == 0


# ------------------------------------------------------------------------------ truncation

CUT_GPT = ("There are several ways to kill a Python process:\n\n1. **Using the Terminal:**\n\n   - On Unix/Linux "
           "systems, you can use the `kill` command along with the process ID (PID).\n\n2. **Using a Python IDE:**\n\n"
           "   - If you're running the Python")
CUT_CODE = ("Here is a function that reads the file:\n\n```python\ndef read_rows(path):\n    with open(path) as fh:\n"
            "        for line in fh:\n            yield line.rstrip('\\n')\n")
CUT_COMMA = ("Auschwitz was the largest Nazi camp. More than a million people were murdered there, most of them Jews, "
             "and many others were deported to forced labour in the surrounding factories,")


@pytest.mark.parametrize("attrs,tokens,label", [
    ({"gen_ai.response.finish_reasons": '["length"]'}, None, "finish_reason_length"),   # OpenAI, OTel list form
    ({"finish_reason": "max_tokens"}, None, "finish_reason_length"),                    # Anthropic stop_reason
    ({"finish_reason": "MAX_TOKENS"}, None, "finish_reason_length"),                    # Gemini
    ({"finish_reason": "content_filter"}, None, "content_filter"),
    ({"gen_ai.request.max_tokens": "256"}, 256, "max_tokens_reached"),
    ({"gen_ai.request.max_tokens": "256"}, 120, "complete"),
    ({"finish_reason": "stop"}, None, "complete"),
])
def test_truncation_from_the_call(attrs, tokens, label) -> None:
    assert truncation_eval("Kill it with `kill -9 <pid>`.", attrs, tokens).label == label


@pytest.mark.parametrize("answer,label", [
    (CUT_GPT, "mid_sentence"),
    (CUT_CODE, "unclosed_code_block"),
    (CUT_COMMA, "mid_sentence"),
    (CUT_GPT + " process.", "complete"),
    (CUT_CODE + "```\n\nCall it with `read_rows('data.csv')`.", "complete"),
    ("Paris", "complete"),
    ("The answer is 42", "complete"),
    (CUT_GPT + ".\n\n- first item\n- second item", "complete"),
    (CUT_GPT + ".\n\nSee https://docs.python.org/3/library/os.html", "complete"),
    (CUT_GPT + ".\n\n| signal | number |\n|---|---|\n| SIGTERM | 15 |", "complete"),
    (CUT_GPT + ". Good luck! 🚀", "complete"),
])
def test_truncation_from_the_text(answer, label) -> None:
    assert truncation_eval(answer, {}).label == label


def test_a_cut_ending_on_a_comma_or_article_scores_higher_than_on_a_noun() -> None:
    assert truncation_eval(CUT_COMMA, {}).badness > truncation_eval(CUT_GPT, {}).badness >= 0.5


# ------------------------------------------------------------------------------ format

ORDER_SCHEMA = {
    "type": "object", "required": ["order_id", "items", "status"], "additionalProperties": False,
    "properties": {
        "order_id": {"type": "string", "pattern": "^ORD-[0-9]{6}$"},
        "status": {"enum": ["open", "shipped", "cancelled"]},
        "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/item"}},
        "note": {"type": ["string", "null"], "maxLength": 20},
        "discount": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"const": "none"}]},
    },
    "$defs": {"item": {"type": "object", "required": ["sku", "qty"],
                       "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "exclusiveMinimum": 0}}}},
}
GOOD_ORDER = {"order_id": "ORD-001234", "status": "open", "items": [{"sku": "A-1", "qty": 2}], "note": None, "discount": 0.1}
BAD_ORDERS = [
    {**GOOD_ORDER, "status": "lost"},
    {**GOOD_ORDER, "order_id": "1234"},
    {**GOOD_ORDER, "items": []},
    {**GOOD_ORDER, "items": [{"sku": "A-1", "qty": 0}]},
    {**GOOD_ORDER, "items": [{"sku": "A-1", "qty": 1.5}]},
    {**GOOD_ORDER, "items": [{"sku": "A-1", "qty": True}]},
    {**GOOD_ORDER, "note": "x" * 21},
    {**GOOD_ORDER, "discount": 2},
    {**GOOD_ORDER, "extra": 1},
    {k: v for k, v in GOOD_ORDER.items() if k != "items"},
    [GOOD_ORDER],
]
GOOD_ORDERS = [GOOD_ORDER, {**GOOD_ORDER, "discount": "none"}, {**GOOD_ORDER, "items": [{"sku": "B", "qty": 3.0}]},
               {k: v for k, v in GOOD_ORDER.items() if k not in ("note", "discount")}]


def _schema_attrs(schema=ORDER_SCHEMA) -> dict[str, str]:
    return {"llmwatch.output_schema": json.dumps(schema)}


@pytest.mark.parametrize("instance", GOOD_ORDERS + BAD_ORDERS)
def test_the_schema_subset_agrees_with_jsonschema(instance) -> None:
    import jsonschema  # the test extra's
    expected = jsonschema.Draft202012Validator(ORDER_SCHEMA).is_valid(instance)
    r = check_format(json.dumps(instance), _schema_attrs())
    assert (r.label == "valid") == expected, r.explanation


@pytest.mark.parametrize("answer,label", [
    ('```json\n{"order_id": "ORD-000001", "status": "shipped", "items": [{"sku": "X", "qty": 1}]}\n```', "valid"),
    ('{"order_id": "ORD-000001", "status": "shipped", "items": [{"sku": "X", "qty": 1}],}', "invalid_json"),
    ("{'order_id': 'ORD-000001'}", "invalid_json"),
    ('{"order_id": "ORD-000001", "status": "shipped", "items": [{"sku": "X", ', "invalid_json"),   # cut mid-object
    ('Sure! Here is the JSON:\n{"order_id": "ORD-000001"}', "invalid_json"),
    ('{"order_id": "ORD-000001", "status": "shipped", "items": [{"sku": "X"}]}', "schema_mismatch"),
])
def test_format_on_model_outputs(answer, label) -> None:
    r = check_format(answer, _schema_attrs())
    assert r.label == label and r.flagged == (label != "valid")


def test_format_without_a_schema_or_declaration() -> None:
    assert check_format('{"a": 1}', {"gen_ai.output.type": "json"}).label == "valid"
    assert check_format("plain text", {"gen_ai.output.type": "text"}) is None
    assert check_format('{"a": 1}', {}) is None
    bad = check_format('{"a": 1}', {"llmwatch.output_schema": "{not json"})
    assert bad.label == "bad_schema" and not bad.flagged
    remote = check_format('{"a": 1}', _schema_attrs({"$ref": "https://example.org/s.json"}))
    assert remote.label == "bad_schema" and not remote.flagged


def test_unchecked_keywords_are_named() -> None:
    r = check_format('{"email": "a@b.co"}', _schema_attrs({"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}))
    assert r.label == "valid" and "not checked: format" in r.explanation


# ------------------------------------------------------------------------------ degenerate

LOOP = ("To reset your password, open the settings page. " + "Then click on the reset button and then click on the "
        "reset button and " * 25)


@pytest.mark.parametrize("answer,label", [
    ("", "empty"), ("  \n\t\u200b ", "empty"),
    ("Dear [Customer Name],\n\nThank you for contacting us about order [Order Number].", "placeholder"),
    ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "placeholder"),
    ("Hello {{ first_name }}, your invoice is ready.", "placeholder"),
    ("N/A", "placeholder"),
    (LOOP, "repetition_loop"),
    ("Step done.\n" + "I will now continue with the next step.\n" * 8, "repetition_loop"),
    ("The result is: " + "ha" * 60, "repetition_loop"),
    ("Use a Jinja template:\n```html\n<p>Hello {{ user.name }}</p>\n```", "ok"),
    ("See [your dashboard](https://example.org/dash) and the docs.", "ok"),
    ("| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n| 5 | 6 |\n| 7 | 8 |", "ok"),
    ("-" * 80 + "\nSection two starts here.", "ok"),
])
def test_degenerate_outputs(answer, label) -> None:
    assert degenerate(answer).label == label


def test_real_answers_are_not_degenerate() -> None:
    rows = [json.loads(line) for line in REFUSAL_DEV.read_text(encoding="utf-8").splitlines()[:200]] if REFUSAL_DEV.is_file() else []
    labels = {degenerate(r["response"]).label for r in rows}
    assert labels <= {"ok"}, labels


# ------------------------------------------------------------------------------ language

@pytest.mark.parametrize("prompt,answer,system,label", [
    ("How do I renew my passport before a trip abroad next month?",
     "Sie können Ihren Reisepass bei der Passbehörde Ihrer Stadt verlängern, bitte bringen Sie ein Foto mit.", None, "mismatch"),
    ("Wie kann ich meinen Reisepass vor einer Reise im nächsten Monat verlängern?",
     "Sie können Ihren Reisepass bei der Passbehörde Ihrer Stadt verlängern, bitte bringen Sie ein Foto mit.", None, "match"),
    ("如何在下个月旅行之前更新我的护照？", "You can renew your passport at the passport office of your city before the trip.",
     None, "mismatch"),
    ("パスポートはどこで更新できますか？旅行の前に知りたいです。", "パスポートは市役所のパスポート窓口で更新できます。写真を持って行ってください。", None, "match"),
    ("How do I renew my passport before a trip abroad next month? Please answer in French.",
     "Vous pouvez renouveler votre passeport à la mairie, et il faut une photo pour la demande.", None, "match"),
    ("How do I renew my passport before a trip abroad next month?",
     "Sie können Ihren Reisepass bei der Passbehörde Ihrer Stadt verlängern, bitte bringen Sie ein Foto mit.",
     "You are a helpful assistant. Always reply in German.", "match"),
    ("Translate to Spanish: where is the train station, please?", "¿Dónde está la estación de tren, por favor?", None,
     "match"),
    ("Write a Python function that adds two numbers and returns the sum of them.",
     "```python\ndef add(a, b):\n    return a + b\n```", None, "undetermined"),
    ("Capital of France?", "Paris", None, "undetermined"),
])
def test_language(prompt, answer, system, label) -> None:
    assert check_language(prompt, answer, system).label == label


def test_language_codes() -> None:
    assert detect_language("Пожалуйста, ответьте на вопрос о погоде в Москве завтра.") == "Cyrl"
    assert detect_language("Dit is een korte zin in het Nederlands, en het is niet moeilijk om te lezen.") == "nl"
    assert detect_language("ok") == "und"


# ------------------------------------------------------------------------------ PII and secrets

SECRETS = {
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7x...\n-----END RSA PRIVATE KEY-----",
    "aws_access_key": "AKIA2E0A8F3B244C9986",
    "api_key": "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "password": 'DB_PASSWORD = "t7#Qm2!vLp9z"',
}


@pytest.mark.parametrize("kind,value", list(SECRETS.items()))
def test_secrets_are_found_and_never_stored(kind, value) -> None:
    answer = f"Here is the config you asked for:\n\n{value}\n\nKeep it safe."
    r = check_pii(answer, "Show me the production config.")
    assert r.label == "secret" and kind in r.explanation
    v = QualityDetector(checks=("pii",)).detect(Event(prompt="Show me the config.", response=answer))
    assert v.flagged and v.label == "pii"
    stored = json.dumps(dict(v.evidence))
    assert value not in stored and value.split("\n")[0][-12:] not in stored


def test_personal_data_kinds() -> None:
    answer = ("Jane's e-mail is jane.doe@acme-corp.com, her phone +44 20 7946 0958, card 4539 1488 0343 6467, "
              "IBAN GB82 WEST 1234 5698 7654 32 and SSN 123-45-6789.")
    assert scan_pii(answer, "") == {"email": 1, "iban": 1, "payment_card": 1, "phone": 1, "us_ssn": 1}


@pytest.mark.parametrize("answer", [
    "Set `api_key = os.environ['OPENAI_API_KEY']` or pass api_key='sk-your-key-here'.",
    "Write to user@example.com for a test, or use AKIAIOSFODNN7EXAMPLE in the docs.",
    "Call the IRS at 1-800-829-1040 or write to support@irs-help.org.",
    "Order 1700000000000 shipped on 2024-05-01; invoice 4111 1111 1111 1111 is a test number.",
])
def test_placeholders_and_public_contacts_are_not_pii(answer) -> None:
    assert check_pii(answer, "").label == "none"


def test_pii_the_user_gave_is_not_a_leak() -> None:
    assert check_pii("I updated jane.doe@acme-corp.com.", "Change my e-mail to jane.doe@acme-corp.com").label == "none"


# ------------------------------------------------------------------------------ the detector

def test_every_check_reports_an_otel_shaped_result() -> None:
    det = QualityDetector()
    ev = Event(prompt="Return the order as JSON.", response='{"order_id": "ORD-000001"}',
               attributes={"llmwatch.output_schema": json.dumps(ORDER_SCHEMA), "finish_reason": "stop"})
    v = det.detect(ev)
    assert set(v.evidence["evaluations"]) == set(CHECKS) and v.evidence["skipped"] == []
    assert v.flagged and v.label == "format" and v.evidence["flagged"] == ["format"]
    for attrs in otel_results(v):
        assert set(attrs) == {"gen_ai.evaluation.name", "gen_ai.evaluation.score.value", "gen_ai.evaluation.score.label",
                              "gen_ai.evaluation.explanation"}
        assert isinstance(attrs["gen_ai.evaluation.score.value"], float)


def test_no_response_is_not_scored_and_undeclared_format_is_skipped() -> None:
    det = QualityDetector()
    v = det.detect(Event(prompt="hi"))
    assert (v.score, v.flagged, v.label, v.evidence["evaluations"]) == (0.0, False, "no_response", {})
    v = det.detect(Event(prompt="What is 2 + 2?", response="2 + 2 is 4."))
    assert "format" in v.evidence["skipped"] and not v.flagged


def test_truncation_from_attributes_flags_the_call() -> None:
    v = QualityDetector().detect(Event(prompt="Explain TCP.", response="TCP is a transport protocol that",
                                       attributes={"gen_ai.response.finish_reasons": '["length"]'}))
    assert v.flagged and v.label == "truncation" and v.score == 1.0


def test_relevance_flags_an_answer_to_another_question_but_not_a_refusal() -> None:
    det = QualityDetector()
    prompt = "How long should I knead bread dough by hand before the first rise?"
    off = det.detect(Event(prompt=prompt, response="Kubernetes schedules pods onto nodes; a Deployment keeps the "
                                                  "desired number of replicas running and rolls out new versions."))
    on = det.detect(Event(prompt=prompt, response="Knead the dough for about 10 minutes by hand, until it is smooth, "
                                                 "elastic and springs back when you press it."))
    assert off.evidence["evaluations"]["relevance"]["label"] == "off_topic" and off.label == "relevance"
    assert on.evidence["evaluations"]["relevance"]["label"] == "relevant" and not on.flagged
    refused = det.detect(Event(prompt=prompt, response="I'm sorry, but I can't help with that request."))
    assert refused.evidence["evaluations"]["relevance"]["label"] == "refusal" and refused.label == "refusal"


def test_the_quality_refusal_equals_the_refusal_detector() -> None:
    events = [Event(prompt="x", response=r) for r in (
        "I cannot provide instructions on how to harm someone.", "Sure! Here are three tips.",
        "It's not appropriate to make generalizations about any group of people.",
        "Lo siento, pero no puedo ayudar con eso.")]
    q = QualityDetector(checks=("refusal",)).detect_batch(events)
    r = RefusalDetector().detect_batch(events)
    assert [v.score for v in q] == [v.score for v in r]
    assert [v.evidence["evaluations"]["refusal"] for v in q] == [v.evidence["evaluations"]["refusal"] for v in r]
    assert [v.flagged for v in r] == [True, False, True, True]


def test_partial_refusal() -> None:
    v = RefusalDetector().detect(Event(prompt="x", response=(
        "Sure, here is how a lock works: pins of different heights block the cylinder until the right key lifts them. "
        "However, I can't help you pick a lock that is not yours.")))
    assert v.flagged and v.label == "partial_refusal"


# ------------------------------------------------------------------------------ refusal accuracy on the dev set

@pytest.fixture(scope="module")
def prepared():
    if not REFUSAL_DEV.is_file():
        pytest.fail(f"{REFUSAL_DEV} not found; set LLMWATCH_EVAL_DIR to the folder of the dev sets")
    from detectors.embeddings import default_embedder

    return training_mod.prepare(training_mod.load_rows(REFUSAL_DEV), default_embedder())


def _report_rows(method: str) -> dict[str, tuple[float, float]]:
    """(accuracy, F1) per held-out source of ``method`` as written in bench/results/refusal.md."""
    report = (ROOT / "bench" / "results" / "refusal.md").read_text(encoding="utf-8")
    section = report.split(f"**{method}**", 1)[1].split("**", 1)[0]
    return {m.group(1): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"\| held out `([^`]+)` \| ([0-9.]+) \| ([0-9.]+) \|", section)}


def test_leave_one_model_out_meets_the_bar_in_every_fold_and_matches_the_report(prepared) -> None:
    methods = training_mod.methods(prepared)
    shipped = training_mod.loso(prepared, methods["grouped cues + exemplar cue + logistic (shipped)"])
    phrase_list = training_mod.loso(prepared, methods["phrase list (the old drift signal)"])
    assert len(shipped) == 2
    for source, m in shipped.items():
        assert m["accuracy"] >= ACCURACY_FLOOR and m["f1"] >= F1_FLOOR, (source, m)
        assert m["accuracy"] > phrase_list[source]["accuracy"], source
    reported = _report_rows("grouped cues + exemplar cue + logistic (shipped)")
    for source, m in shipped.items():
        assert reported[source] == pytest.approx((m["accuracy"], m["f1"]), abs=0.0015), source


def test_the_shipped_weights_are_the_fit_on_the_dev_set(prepared) -> None:
    refit = training_mod.fit_model(prepared, np.arange(len(prepared.y)))
    shipped = detector_mod.cached_model(refusal.MODEL_PATH)
    assert refit.sim_threshold == shipped.sim_threshold
    assert np.allclose(refit.coef, shipped.coef, atol=1e-3) and abs(refit.intercept - shipped.intercept) < 1e-3


def test_eval_refusal_cli_on_the_dev_set(prepared) -> None:
    from typer.testing import CliRunner

    from streams.cli import app

    result = CliRunner().invoke(app, ["eval", "refusal", str(REFUSAL_DEV), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    keys = {"precision", "recall", "f1", "auroc", "accuracy", "balanced_accuracy", "fpr", "threshold", "n"}
    assert keys | {"events_per_s", "by_source"} <= set(payload) and payload["n"] == len(prepared.y)
    assert payload["accuracy"] >= ACCURACY_FLOOR and payload["f1"] >= F1_FLOOR, payload
    for source, m in payload["by_source"].items():
        assert m["accuracy"] >= ACCURACY_FLOOR and m["f1"] >= F1_FLOOR, (source, m)


# Hand-written for this test in the styles of other model families (not a measurement: a guard
# against patterns that only know the two dev models, and against refusal words in helpful answers).
OTHER_STYLES_REFUSING = [
    "I apologize, but I cannot fulfill your request. As a responsible AI language model, I cannot provide that.",
    "Thank you for reaching out! However, I must point out that the question contains harmful language. Instead, "
    "I suggest asking about safe alternatives.",
    "I'm unable to assist with that. If you have another question, feel free to ask.",
    "I don't feel comfortable helping with this request, as it could be used to hurt someone.",
    "I won't be able to help with that, but I'm happy to talk about something else.",
    "My apologies, but I'm not able to share that kind of personal information.",
    "As a language model developed to be helpful and harmless, I have to decline this request.",
    "Es tut mir leid, aber dabei kann ich nicht helfen.",
    "抱歉，我无法帮助您完成这个请求。",
]
HELPFUL_WITH_REFUSAL_WORDS = [
    "I'm sorry to hear about your hamster. Here's how you can bury it properly: choose a quiet spot and dig deep.",
    "It's not recommended to use eval() on untrusted input; use ast.literal_eval instead.",
    "It's not safe to eat chicken below 74°C, so cook it until the thickest part reaches that temperature.",
    "Unfortunately, the old API was removed in version 2.0, so call client.fetch() instead.",
    "I can't recommend this book enough: it explains recursion with clear, small examples.",
    "You can't go wrong with a cast-iron pan. Heat it, add oil, and sear the steak for 3 minutes per side.",
    "Affirmative action",
]


def test_refusal_styles_of_other_models_and_helpful_answers_with_refusal_words() -> None:
    det = RefusalDetector()
    refusing = det.detect_batch([Event(prompt="x", response=t) for t in OTHER_STYLES_REFUSING])
    helpful = det.detect_batch([Event(prompt="x", response=t) for t in HELPFUL_WITH_REFUSAL_WORDS])
    assert [t for t, v in zip(OTHER_STYLES_REFUSING, refusing) if not v.flagged] == []
    assert [t for t, v in zip(HELPFUL_WITH_REFUSAL_WORDS, helpful) if v.flagged] == []


@pytest.mark.parametrize("shape", ["i really ", "4 ", "a@", "password=", "[Your ", "```", "[", "+1 12 ", "instead of "])
def test_hostile_50k_answers_stay_cheap(shape) -> None:
    import time

    answer = shape * (50_000 // len(shape))
    det = QualityDetector(refusal_similarity=False, checks=("refusal", "truncation", "degenerate", "format", "language", "pii"))
    started = time.perf_counter()
    v = det.detect(Event(prompt=answer[:5000], response=answer, attributes={"gen_ai.output.type": "json"}))
    assert time.perf_counter() - started < 1.0 and v.evidence["evaluations"]["format"]["label"] == "invalid_json"
