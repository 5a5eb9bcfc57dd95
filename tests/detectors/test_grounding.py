"""Tests for detectors.grounding: real embedder, a real local HTTP server for the judge."""
from __future__ import annotations

import json
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from detectors.base import REGISTRY, Event
from detectors.embeddings import default_embedder
from detectors.grounding import GroundingDetector, LengthBaseline, LLMJudge

CTX = (
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by the "
    "company of Gustave Eiffel and completed in 1889 for the World's Fair.",
    "The tower is 330 metres tall and was the tallest man-made structure in the world until 1930.",
)
Q = "When was the Eiffel Tower completed?"


@pytest.fixture(scope="module")
def det() -> GroundingDetector:
    return GroundingDetector(embedder=default_embedder())


def ev(response, context=CTX, prompt=Q, event_id="e1") -> Event:
    return Event(prompt=prompt, response=response, context=context, event_id=event_id)


def test_supported_sentence_scores_below_invented_number(det):
    good = det.detect(ev("The Eiffel Tower was completed in 1889."))
    bad = det.detect(ev("The Eiffel Tower was completed in 1923."))
    assert not good.flagged and bad.flagged
    assert good.score < bad.score
    assert "1923" in bad.evidence["unsupported"][0]["names"]


def test_entity_not_in_context_is_flagged_and_named(det):
    v = det.detect(ev("The tower was designed by Charles Lindqvist."))
    assert v.flagged and v.label == "unsupported"
    (u,) = v.evidence["unsupported"]
    assert "Charles Lindqvist" in u["names"]
    assert u["sentence"] == "The tower was designed by Charles Lindqvist."
    assert u["passage"] in (0, 1) and -1.0 <= u["similarity"] <= 1.0


def test_only_the_unsupported_sentence_is_named(det):
    v = det.detect(ev("The tower is 330 metres tall. It was painted gold by Napoleon Bonaparte in 1850."))
    names = [u["sentence"] for u in v.evidence["unsupported"]]
    assert v.flagged and names == ["It was painted gold by Napoleon Bonaparte in 1850."]
    assert v.evidence["claims"] == 2 and v.evidence["supported_fraction"] == 0.5


def test_copying_the_question_is_not_support(det):
    q = "Which Danish architect designed the Sydney Opera House for Harald Moltke in 1957?"
    copied = det.detect(ev("A Danish architect designed the Sydney Opera House for Harald Moltke in 1957.", prompt=q))
    assert copied.flagged, copied.evidence
    # the same words are supported once the context says them
    ctx = ("The Sydney Opera House was designed by a Danish architect for Harald Moltke in 1957.",)
    backed = det.detect(ev("A Danish architect designed the Sydney Opera House for Harald Moltke in 1957.", context=ctx, prompt=q))
    assert not backed.flagged and backed.score < copied.score


@pytest.mark.parametrize("context", [None, (), ("", "   ")])
def test_no_context_verdict(det, context):
    v = det.detect(ev("Anything at all.", context=context))
    assert (v.label, v.score, v.flagged) == ("no_context", 0.0, False)
    assert "reason" in v.evidence


@pytest.mark.parametrize("response", [None, "", "   ", "?!"])
def test_empty_response_verdict(det, response):
    v = det.detect(ev(response))
    assert (v.label, v.score, v.flagged) == ("empty_response", 0.0, False)


def test_batch_equals_single_and_encodes_once():
    calls = []
    inner = default_embedder()

    class Counting:
        dim = inner.dim

        def encode(self, texts):
            calls.append(len(texts))
            return inner.encode(texts)

    d = GroundingDetector(embedder=Counting())
    events = [ev("The tower was completed in 1889."), ev("It is 500 metres tall.", event_id="e2"),
              ev("x", context=None), ev("Built by Gustave Eiffel's company.", prompt="", event_id="e3")]
    batch = d.detect_batch(events)
    assert len(calls) == 1
    single = [d.detect(e) for e in events]
    for b, s in zip(batch, single):
        assert b.label == s.label and b.flagged == s.flagged and b.score == pytest.approx(s.score, abs=1e-5)


def test_score_in_unit_interval_and_registered(det):
    v = det.detect(ev("The Eiffel Tower is in Paris."))
    assert 0.0 <= v.score <= 1.0 and v.detector == "grounding" and v.version == "1.0.0"
    assert REGISTRY["grounding"] is GroundingDetector
    assert REGISTRY["grounding_length_baseline"] is LengthBaseline


def test_pickle_clone_repr():
    d = GroundingDetector(threshold=0.4, weights={"invented": 2.0}, bias=-1.0)
    d2 = pickle.loads(pickle.dumps(d))
    assert d2._params() == d._params() and d.clone()._params() == d._params()
    assert "threshold=0.4" in repr(d)


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "x"}, "threshold"),
        ({"weights": {"nope": 1.0}}, "nope"),
        ({"weights": {"invented": float("nan")}}, "invented"),
        ({"bias": "high"}, "bias"),
        ({"embedder": object()}, "embedder"),
        ({"judge": 3}, "judge"),
    ],
)
def test_constructor_validation(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        GroundingDetector(**kwargs)


def test_length_baseline():
    b = LengthBaseline()
    assert b.detect(ev("")).score == 0.0
    assert b.detect(ev("one two three four five six seven eight nine ten")).score == 0.5
    with pytest.raises(ValueError, match="half_words"):
        LengthBaseline(half_words=0)


# --- the LLM judge, against real HTTP servers on 127.0.0.1 -------------------------------------

class _Handler(BaseHTTPRequestHandler):
    mode = "ok"      # "ok" | "slow" | "500"
    reply = {"supported": False, "confidence": 0.9, "unsupported_claims": ["x"]}
    seen: list = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if self.mode == "slow":
            time.sleep(3.0)
        if self.mode == "500":
            return self._send(500, {"error": {"message": "internal error"}})
        # check the request the way the OpenAI API would
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        if self.headers.get("Authorization") != "Bearer sk-test":
            return self._send(401, {"error": {"message": "bad key"}})
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._send(415, {"error": {"message": "json only"}})
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return self._send(400, {"error": {"message": "bad json"}})
        msgs = body.get("messages")
        if not isinstance(body.get("model"), str) or not isinstance(msgs, list) or not msgs or not all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") and isinstance(m.get("content"), str)
            for m in msgs
        ):
            return self._send(400, {"error": {"message": "model and messages required"}})
        type(self).seen.append(body)
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "```json\n" + json.dumps(self.reply) + "\n```"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass


@pytest.fixture
def server():
    started = []

    def start(mode):
        handler = type("H", (_Handler,), {"mode": mode, "seen": []})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True  # do not wait for the sleeping handler at teardown
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/v1", handler

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def test_judge_answer_is_blended_and_recorded(det, server):
    url, handler = server("ok")
    judge = LLMJudge(url, "judge-model", api_key="sk-test", sample_rate=1.0, timeout_s=5.0)
    d = GroundingDetector(embedder=det._embedder(), judge=judge)
    local = det.detect(ev("The Eiffel Tower was completed in 1889."))
    v = d.detect(ev("The Eiffel Tower was completed in 1889."))
    assert len(handler.seen) == 1
    body = handler.seen[0]
    assert body["model"] == "judge-model" and "1889" in body["messages"][-1]["content"]
    assert v.label == "judged"
    assert v.evidence["judge"]["supported"] is False
    assert v.evidence["judge"]["local_score"] == pytest.approx(local.score, abs=1e-4)
    assert v.score == pytest.approx(0.5 * local.score + 0.5 * 0.9, abs=1e-4)


def test_judge_wrong_key_is_an_error_not_an_exception(det, server):
    url, _ = server("ok")
    d = GroundingDetector(embedder=det._embedder(), judge=LLMJudge(url, "m", api_key="sk-wrong", sample_rate=1.0))
    v = d.detect(ev("The Eiffel Tower was completed in 1889."))
    assert "401" in v.evidence["judge"]["error"] and v.label == "supported"


def test_judge_timeout_keeps_local_score(det, server):
    url, _ = server("slow")
    judge = LLMJudge(url, "m", api_key="sk-test", sample_rate=1.0, timeout_s=0.3)
    t0 = time.monotonic()
    assert "Timeout" in judge.judge(ev("x")).error
    assert time.monotonic() - t0 < 2.5  # the server sleeps 3 s
    d = GroundingDetector(embedder=det._embedder(), judge=judge)
    v = d.detect(ev("The Eiffel Tower was completed in 1923."))
    local = det.detect(ev("The Eiffel Tower was completed in 1923."))
    assert v.score == pytest.approx(local.score, abs=1e-5) and v.flagged == local.flagged and v.label == "unsupported"
    assert "Timeout" in v.evidence["judge"]["error"]


def test_judge_http_500_keeps_local_score(det, server):
    url, _ = server("500")
    d = GroundingDetector(embedder=det._embedder(), judge=LLMJudge(url, "m", api_key="sk-test", sample_rate=1.0))
    v = d.detect(ev("The Eiffel Tower was completed in 1889."))
    assert v.evidence["judge"]["error"].startswith("HTTP 500") and v.label == "supported"


def test_judge_connection_refused_never_raises(det):
    judge = LLMJudge("http://127.0.0.1:1/v1", "m", sample_rate=1.0, timeout_s=0.5)
    v = GroundingDetector(embedder=det._embedder(), judge=judge).detect(ev("The tower is 330 metres tall."))
    assert "error" in v.evidence["judge"]


def test_judge_sampling_is_deterministic():
    j = LLMJudge("http://127.0.0.1:1/v1", "m", sample_rate=0.1, seed=0)
    picks = [j.sampled(f"id-{i}") for i in range(5000)]
    assert picks == [j.sampled(f"id-{i}") for i in range(5000)]
    assert 0.08 < sum(picks) / 5000 < 0.12
    assert picks != [LLMJudge("http://127.0.0.1:1/v1", "m", sample_rate=0.1, seed=1).sampled(f"id-{i}") for i in range(5000)]


def test_unsampled_event_has_no_judge_evidence(det):
    d = GroundingDetector(embedder=det._embedder(), judge=LLMJudge("http://127.0.0.1:1/v1", "m", sample_rate=0.0))
    assert "judge" not in d.detect(ev("The tower is 330 metres tall.")).evidence


@pytest.mark.parametrize(
    "kwargs, bad",
    [({"base_url": "localhost:8000"}, "base_url"), ({"model": ""}, "model"), ({"sample_rate": 2}, "sample_rate"),
     ({"timeout_s": 0}, "timeout_s"), ({"seed": 1.5}, "seed"), ({"api_key": 5}, "api_key")],
)
def test_judge_validation(kwargs, bad):
    args = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **kwargs}
    with pytest.raises(ValueError, match=bad):
        LLMJudge(**args)


def test_judge_repr_hides_key():
    assert "sk-secret" not in repr(LLMJudge("http://127.0.0.1:1/v1", "m", api_key="sk-secret"))


def test_context_chunks_are_cached_between_calls():
    sizes = []
    inner = default_embedder()

    class Counting:
        dim = inner.dim

        def encode(self, texts):
            sizes.append(list(texts))
            return inner.encode(texts)

    d = GroundingDetector(embedder=Counting())
    first = d.detect(ev("The tower was completed in 1889."))
    again = d.detect(ev("The tower was completed in 1889."))
    assert not any(c in sizes[1] for c in CTX[1:])  # context sentences not re-encoded
    assert again.score == pytest.approx(first.score, abs=1e-6)
    assert len(d._chunk_cache) > 0
    d.embedder = None  # the local test embedder class cannot be pickled; the cache must not travel
    assert pickle.loads(pickle.dumps(d))._chunk_cache == {}


def test_claims_past_the_cap_are_left_unchecked_and_reported():
    from detectors.base import Event
    from detectors.grounding import GroundingDetector

    response = " ".join(f"The router costs {i} dollars." for i in range(20))
    v = GroundingDetector(max_claims=5).detect(
        Event(prompt="price?", response=response, context=("The router costs 3 dollars.",))
    )
    assert v.evidence["claims"] == 5 and v.evidence["unchecked_claims"] == 15
