"""Drift detector: detection, no false alarm, river scalar drift, pickling and state dicts."""
from __future__ import annotations

import dataclasses
import doctest
import json
import pickle
import random
import zlib

import numpy as np
import pytest

import detectors.drift.detector
import detectors.drift.embedding
import detectors.drift.reference
import detectors.drift.scalar
from detectors.base import REGISTRY, Event
from detectors.drift import DriftDetector, DriftReport
from detectors.drift.embedding import mmd_test
from detectors.drift.scalar import ScalarDrift, is_refusal


class ClusterEmbedder:
    """Deterministic stand-in: a text starting with "a" lies near e0, with "b" near e1."""

    dim = 16

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(t.encode()))
            v = rng.normal(size=self.dim)
            v[0 if t.startswith("a") else 1] += 3.0
            out[i] = v / np.linalg.norm(v)
        return out


SMALL = dict(reference_size=80, window_size=40, check_every=5)


def stream(n_a: int, n_b: int = 0, app: str = "app", response: bool = False) -> list[Event]:
    texts = [f"a-{i}" for i in range(n_a)] + [f"b-{i}" for i in range(n_b)]
    return [Event(prompt=t, response=(f"a-r{i:04d}" if response else None), app=app) for i, t in enumerate(texts)]


def alarms(verdicts) -> list[int]:
    return [i for i, v in enumerate(verdicts) if v.flagged]


@pytest.mark.parametrize("policy", ["rolling", "fixed"])
def test_abrupt_drift_is_detected_soon_after_the_change(policy):
    det = DriftDetector(policy=policy, embedder=ClusterEmbedder(), **SMALL)
    verdicts = det.detect_batch(stream(300, 100))
    found = alarms(verdicts)
    assert found and 300 <= found[0] < 340
    assert "prompt_embedding" in verdicts[found[0]].evidence["signals"]
    assert verdicts[found[0]].score == 1.0 and verdicts[found[0]].label == "alarm"


def test_no_drift_raises_no_alarm():
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    verdicts = det.detect_batch(stream(1500))
    assert alarms(verdicts) == []
    assert sum(v.label == "tested" for v in verdicts) > 200
    assert all(0.0 <= v.score <= 1.0 for v in verdicts)


def test_rolling_reference_rebuilds_from_post_change_data():
    det = DriftDetector(policy="rolling", embedder=ClusterEmbedder(), **SMALL)
    verdicts = det.detect_batch(stream(300, 400))
    assert len(alarms(verdicts)) == 1  # one change, one alarm: the new population becomes the reference
    rep = det.report(("app", "", ""))
    assert rep.n_alarms == 1 and rep.reference_sizes["prompt"] == 80


def test_fixed_reference_keeps_alarming_while_the_stream_differs():
    det = DriftDetector(policy="fixed", embedder=ClusterEmbedder(), **SMALL)
    verdicts = det.detect_batch(stream(300, 400))
    assert len(alarms(verdicts)) >= 3


def test_keys_are_independent():
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    events = [e for pair in zip(stream(300, 100, app="x"), stream(400, app="y")) for e in pair]
    verdicts = det.detect_batch(events)
    flagged_apps = {events[i].app for i in alarms(verdicts)}
    assert flagged_apps == {"x"}
    assert sorted(det.keys()) == [("x", "", ""), ("y", "", "")]


def test_response_embeddings_are_a_second_signal():
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    events = [Event(prompt=f"a-{i}", response=(f"a-r{i:04d}" if i < 300 else f"b-r{i:04d}")) for i in range(400)]
    verdicts = det.detect_batch(events)
    first = alarms(verdicts)[0]
    assert verdicts[first].evidence["signals"] == ["response_embedding"]
    assert verdicts[first].evidence["level"] == pytest.approx(0.005 / 2)  # Bonferroni over two signals


def test_scalar_latency_shift_is_detected_by_river():
    rng = random.Random(3)
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    events = [
        Event(prompt=f"a-{i}", latency_ms=rng.gauss(300, 30) if i < 600 else rng.gauss(900, 90)) for i in range(900)
    ]
    verdicts = det.detect_batch(events)
    latency = [i for i, v in enumerate(verdicts) if "latency_ms" in v.evidence["signals"]]
    assert latency and 600 <= latency[0] < 700
    assert det.report(("", "", "")).scalar_alarms["latency_ms"] >= 1


@pytest.mark.parametrize("method", ["adwin", "page_hinkley", "kswin"])
def test_scalar_error_rate_shift_and_state_round_trip(method):
    rng = random.Random(5)
    events = [Event(prompt="q", status="ok" if rng.random() > (0.02 if i < 800 else 0.5) else "error") for i in range(1600)]
    bank = ScalarDrift(method, seed=1)
    for e in events[:700]:
        bank.update(e)
    copy = ScalarDrift(method, seed=1)
    copy.load_state_dict(json.loads(json.dumps(bank.state_dict())))
    rest_a = [bank.update(e) for e in events[700:]]
    rest_b = [copy.update(e) for e in events[700:]]
    assert rest_a == rest_b
    assert any("error" in fired for fired in rest_a[100:])


def test_refusal_signal_is_the_quality_refusal_classifier():
    from detectors.quality.detector import cached_model, refusal_eval
    from detectors.quality.refusal import MODEL_PATH

    assert is_refusal("I'm sorry, but I cannot help with that.")
    assert is_refusal("Unfortunately, I am unable to assist with hacking into accounts.")
    # the old opening-phrase list called these refusals: an apology and a disclaimer that answer
    assert not is_refusal("I'm sorry to hear that your order is late. It will arrive tomorrow.")
    assert not is_refusal("As an AI language model, I ...")
    assert not is_refusal("Sorry to hear that! Here is a fix: ...")
    assert not is_refusal("The capital of France is Paris.")
    text = "I won't help with that request."
    assert is_refusal(text) == refusal_eval(text, cached_model(MODEL_PATH), None).flagged


def test_detect_batch_matches_one_by_one_and_embeds_once():
    emb = ClusterEmbedder()
    events = stream(200, 60, response=True)
    batch = DriftDetector(embedder=emb, **SMALL).detect_batch(events)
    assert emb.calls == 1
    single = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    one_by_one = [single.update(e) for e in events]
    assert [(v.score, v.flagged, v.label) for v in batch] == [(v.score, v.flagged, v.label) for v in one_by_one]


def test_pickling_mid_stream_continues_identically():
    events = stream(250, 150, response=True)
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    det.detect_batch(events[:230])
    blob = pickle.dumps(det)
    restored = pickle.loads(blob)
    assert restored.embedder is None and b"ClusterEmbedder" not in blob
    restored.set_embedder(ClusterEmbedder())
    a = det.detect_batch(events[230:])
    b = restored.detect_batch(events[230:])
    assert [(v.score, v.flagged, dict(v.evidence)) for v in a] == [(v.score, v.flagged, dict(v.evidence)) for v in b]
    assert alarms(a)


@pytest.mark.parametrize("policy", ["rolling", "fixed"])
def test_state_dict_round_trips_through_json(policy):
    rng = random.Random(0)
    events = [
        Event(prompt=e.prompt, response=e.response, latency_ms=rng.uniform(100, 200), app=e.app)
        for e in stream(250, 150, response=True)
    ]
    det = DriftDetector(policy=policy, embedder=ClusterEmbedder(), **SMALL)
    det.detect_batch(events[:330])
    state = json.loads(json.dumps(det.state_dict()))
    fresh = DriftDetector(policy=policy, embedder=ClusterEmbedder(), **SMALL)
    fresh.load_state_dict(state)
    # the alarm history travels too (a worker taking over a key must not re-fire it)
    assert det.report(("app", "", "")).last_alarm_index is not None
    assert fresh.report(("app", "", "")) == det.report(("app", "", ""))
    a = det.detect_batch(events[330:])
    b = fresh.detect_batch(events[330:])
    assert [(v.score, v.flagged, dict(v.evidence)) for v in a] == [(v.score, v.flagged, dict(v.evidence)) for v in b]
    assert det.report(("app", "", "")) == fresh.report(("app", "", ""))


def test_state_dict_of_one_key_and_config_mismatch():
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    det.detect_batch(stream(20, app="x") + stream(20, app="y"))
    one = det.state_dict(("x", "", ""))
    assert [k["key"] for k in one["keys"]] == [["x", "", ""]]
    other = DriftDetector(embedder=ClusterEmbedder(), reference_size=81, window_size=40, check_every=5)
    with pytest.raises(ValueError, match="config"):
        other.load_state_dict(one)


def test_report_is_a_frozen_summary():
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    det.detect_batch(stream(150))
    rep = det.report(("app", "", ""))
    assert isinstance(rep, DriftReport) and rep.n_events == 150
    assert rep.reference_sizes["prompt"] == 80 and rep.current_sizes["prompt"] == 40
    assert rep.n_tests["prompt"] == (150 - 120) // 5 + 1 and rep.n_alarms == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.n_events = 0  # type: ignore[misc]
    with pytest.raises(KeyError):
        det.report(("nope", "", ""))


def test_verdict_contract_and_registry():
    assert REGISTRY["drift"] is DriftDetector
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    v = det.detect(Event(prompt="a-1"))
    assert (v.detector, v.version, v.flagged, v.label) == ("drift", "1.0.0", False, "warming_up")
    assert v.threshold == pytest.approx(0.995) and v.score == 0.0
    json.dumps(dict(v.evidence))  # evidence is JSON-able
    clone = det.clone()
    assert clone.embedder is det.embedder and clone.keys() == []
    assert "ClusterEmbedder" not in repr(det)  # the model stays out of the repr


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"reference_size": 0}, "reference_size"),
        ({"window_size": 1}, "window_size"),
        ({"check_every": -3}, "check_every"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": 0.0}, "alpha"),
        ({"consecutive": 0}, "consecutive"),
        ({"n_permutations": 50}, "n_permutations"),
        ({"policy": "sliding"}, "policy"),
        ({"scalar_method": "ddm"}, "scalar_method"),
        ({"seed": -1}, "seed"),
        ({"embedder": "minilm"}, "embedder"),
    ],
)
def test_constructor_validation_names_the_value(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DriftDetector(**kwargs)


def test_mmd_test_p_value_is_calibrated_under_the_null():
    rng = np.random.default_rng(0)
    ps = [mmd_test(rng.normal(size=(40, 5)), rng.normal(size=(20, 5)), n_permutations=99, seed=i).p_value for i in range(200)]
    assert 0.02 <= np.mean(np.array(ps) < 0.1) <= 0.2


@pytest.mark.parametrize(
    "module",
    [detectors.drift.detector, detectors.drift.embedding, detectors.drift.reference, detectors.drift.scalar],
)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_a_quiet_test_resets_the_run_of_significant_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """``consecutive`` significant tests *in a row* raise the alarm: significant and quiet tests
    that alternate never do. The MMD test is scripted here; its statistics are tested above."""
    import itertools
    from types import SimpleNamespace

    calls = itertools.count()

    def scripted(reference, current, **_: object) -> SimpleNamespace:
        # prompt and response are tested at the same events: significant for one round, quiet the next
        round_ = next(calls) // 2
        return SimpleNamespace(p_value=0.0 if round_ % 2 == 0 else 1.0, statistic=1.0)

    class Flat:
        dim = 4

        def encode(self, texts):
            return np.ones((len(texts), 4), dtype=np.float32)

    monkeypatch.setattr(detectors.drift.detector, "mmd_test", scripted)
    det = DriftDetector(reference_size=20, window_size=10, check_every=5, consecutive=2, embedder=Flat())
    signals = itertools.chain.from_iterable(
        det.detect(Event(prompt=f"question {i}", response="answer", app="a")).evidence.get("signals", [])
        for i in range(300)
    )
    assert not [s for s in signals if s.endswith("_embedding")]


def test_blank_texts_feed_no_window_and_the_first_test_runs_when_the_windows_fill():
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    det.detect_batch([Event(prompt="   ", response=f"a-r{i}", app="app") for i in range(10)])
    rep = det.report(("app", "", ""))
    assert rep.reference_sizes.get("prompt", 0) + rep.current_sizes.get("prompt", 0) == 0
    assert rep.reference_sizes["response"] + rep.current_sizes["response"] == 10
    full = SMALL["reference_size"] + SMALL["window_size"]
    det = DriftDetector(embedder=ClusterEmbedder(), **SMALL)
    det.detect_batch(stream(full - 1))
    assert det.report(("app", "", "")).n_tests["prompt"] == 0
    det.detect_batch(stream(1))
    assert det.report(("app", "", "")).n_tests["prompt"] == 1
