"""Verdicts as OTel gen_ai.evaluation.result log records (streams/pipeline/evaluations.py)."""
from __future__ import annotations

import doctest

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

import streams.pipeline.evaluations
from detectors.base import Verdict
from streams.pipeline.evaluations import MAX_EXPLANATION, encode_evaluations, evaluation_request
from streams.pipeline.redaction import Redactor

TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def call(event_id: str, app: str = "shop", **extra: object) -> dict:
    return {"event_id": event_id, "service_name": app, "deployment_environment": "prod", "trace_id": None,
            "span_id": None, "response_id": None, **extra}


def attrs(record) -> dict:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in record.attributes}


FLAGGED = Verdict("injection", "3", 0.91, True, 0.5, {"rule": "ignore previous"}, "heuristic")
PASSED = Verdict("grounding", "2", 0.1, False, 0.5, {"support": 0.9}, "supported")


def test_each_verdict_is_one_record_under_its_apps_resource() -> None:
    judged = [(call("e1", trace_id=TRACE, span_id=SPAN, response_id="chatcmpl-1"), FLAGGED),
              (call("e2", app="search"), PASSED), (call("e1", trace_id=TRACE, span_id=SPAN), PASSED)]
    request = ExportLogsServiceRequest.FromString(encode_evaluations(judged))
    by_app = {rl.resource.attributes[0].value.string_value: rl for rl in request.resource_logs}
    assert sorted(by_app) == ["search", "shop"]
    shop = by_app["shop"].scope_logs[0]
    assert shop.scope.name == "llmwatch" and len(shop.log_records) == 2
    first = shop.log_records[0]
    assert (first.event_name, first.trace_id.hex(), first.span_id.hex()) == ("gen_ai.evaluation.result", TRACE, SPAN)
    assert first.severity_number == SeverityNumber.SEVERITY_NUMBER_WARN
    a = attrs(first)
    assert (a["gen_ai.evaluation.name"], a["gen_ai.evaluation.score.value"], a["gen_ai.evaluation.score.label"]) == (
        "llmwatch.injection", 0.91, "flagged")
    assert (a["gen_ai.response.id"], a["llmwatch.event_id"], a["llmwatch.detector.version"], a["llmwatch.threshold"]) == (
        "chatcmpl-1", "e1", "3", 0.5)
    assert a["gen_ai.evaluation.explanation"] == 'heuristic: {"rule": "ignore previous"}'
    search = attrs(by_app["search"].scope_logs[0].log_records[0])
    assert search["gen_ai.evaluation.score.label"] == "pass" and "gen_ai.response.id" not in search


def test_a_call_without_ids_gives_an_unparented_record() -> None:
    rec = evaluation_request([(call("e3", trace_id="not-hex", span_id="abcd"), PASSED)]).resource_logs[0].scope_logs[0].log_records[0]
    assert (rec.trace_id, rec.span_id) == (b"", b"")


def test_explanations_are_redacted_and_bounded() -> None:
    leaky = Verdict("injection", "3", 0.7, True, 0.5, {"quote": "mail me at jane@example.com " + "x" * 5000}, "semantic")
    rec = evaluation_request([(call("e4"), leaky)], Redactor.from_names("emails")).resource_logs[0].scope_logs[0].log_records[0]
    text = attrs(rec)["gen_ai.evaluation.explanation"]
    assert "jane@example.com" not in text and len(text) == MAX_EXPLANATION


def test_runner_hands_out_each_verdict_with_its_call() -> None:
    from detectors.base import Detector, Event
    from streams.pipeline.detection import DetectionRunner, Positioned

    class Always(Detector):
        name, version = "always", "1"

        def detect(self, event: Event) -> Verdict:
            return Verdict(self.name, self.version, 1.0, True, 0.5)

    record = {"event_id": "e5", "input_messages": [{"role": "user", "content": "hi"}], "output_text": "yo",
              "retrieved_context": [], "service_name": "a", "request_model": "m", "prompt_version": "v1",
              "timestamp_ms": 5, "system_instructions": None, "deployment_environment": "prod"}
    out = DetectionRunner([Always()], "llm.calls", Redactor(())).run([Positioned(record, 0, 7)])
    assert [(c["event_id"], v.detector) for c, v in out.judged] == [("e5", "always")]


def test_doctests() -> None:
    assert doctest.testmod(streams.pipeline.evaluations).failed == 0
