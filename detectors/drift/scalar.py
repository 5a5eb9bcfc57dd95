"""Scalar drift: river's ADWIN / Page-Hinkley / KSWIN on per-call numbers and rates.

Signals (a value is fed only when the event carries it):

- ``latency_ms``, ``input_tokens``, ``output_tokens``, ``cost_usd``, ``output_chars``: fed as
  ``log1p(x)``, so a relative change (twice as slow) looks the same at 50 ms or 5 s and the
  heavy right tail does not trip the detectors;
- ``error``: 1 when ``status != "ok"`` (every event), an error *rate* for ADWIN;
- ``refusal``: 1 when the quality detector's refusal classifier (patterns only) flags the response.

The algorithms are river's, not ours; this module only picks the inputs and saves their
state as JSON-able values for a Faust table.

>>> import random
>>> from detectors.base import Event
>>> rng = random.Random(0)
>>> bank = ScalarDrift("adwin")
>>> fired = []
>>> for i in range(2000):
...     ms = rng.gauss(200, 20) if i < 1000 else rng.gauss(400, 40)
...     if "latency_ms" in bank.update(Event(prompt="q", latency_ms=ms)):
...         fired.append(i)
>>> 1000 <= fired[0] < 1100
True
"""
from __future__ import annotations

import base64
import math

from typing import Any, Callable

from river import drift, stats

from detectors.base import Event

METHODS = ("adwin", "page_hinkley", "kswin")
SIGNALS = ("latency_ms", "input_tokens", "output_tokens", "cost_usd", "output_chars", "error", "refusal")

def is_refusal(response: str) -> bool:
    """True when the quality detector's refusal classifier says so, from its patterns alone (no
    embedding: the exemplar cue costs an encode per event), so the drift signal and the quality
    check count the same refusals.

    >>> is_refusal("I'm sorry, but I can't help with that."), is_refusal("Sure! Here it is.")
    (True, False)
    """
    from detectors.quality.detector import cached_model, refusal_eval
    from detectors.quality.refusal import MODEL_PATH

    return refusal_eval(response, cached_model(MODEL_PATH), None).flagged


def _log(x: float | None) -> float | None:
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
        return None
    return math.log1p(float(x))


_EXTRACT: dict[str, Callable[[Event], float | None]] = {
    "latency_ms": lambda e: _log(e.latency_ms),
    "input_tokens": lambda e: _log(e.input_tokens),
    "output_tokens": lambda e: _log(e.output_tokens),
    "cost_usd": lambda e: _log(e.cost_usd),
    "output_chars": lambda e: None if e.response is None else math.log1p(len(e.response)),
    "error": lambda e: 0.0 if (e.status or "ok").lower() == "ok" else 1.0,
    "refusal": lambda e: None if e.response is None else float(is_refusal(e.response)),
}


def extract(event: Event) -> dict[str, float]:
    """The scalar signals an event carries."""
    out = {}
    for name in SIGNALS:
        value = _EXTRACT[name](event)
        if value is not None:
            out[name] = value
    return out


def make_detector(method: str, seed: int = 0) -> drift.base.DriftDetector:
    """A river detector with its documented defaults (KSWIN seeded, and at a stricter alpha
    because it tests at every step)."""
    if method == "adwin":
        return drift.ADWIN()
    if method == "page_hinkley":
        return drift.PageHinkley()
    if method == "kswin":
        return drift.KSWIN(alpha=0.0001, seed=seed)
    raise ValueError(f"scalar_method must be one of {METHODS}, got {method!r}")


class ScalarDrift:
    """One river detector per scalar signal for one stream key."""

    def __init__(self, method: str = "adwin", seed: int = 0) -> None:
        if method not in METHODS:
            raise ValueError(f"scalar_method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.seed = seed
        self.detectors: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.alarms: dict[str, int] = {}

    def update(self, event: Event) -> list[str]:
        """Feed the event's signals; return the names of those whose detector fired."""
        fired = []
        for name, value in extract(event).items():
            det = self.detectors.get(name)
            if det is None:
                det = self.detectors[name] = make_detector(self.method, self.seed)
            det.update(value)
            self.counts[name] = self.counts.get(name, 0) + 1
            if det.drift_detected:
                self.alarms[name] = self.alarms.get(name, 0) + 1
                fired.append(name)
        return fired

    def estimates(self) -> dict[str, float]:
        """The running level each detector tracks where river exposes one (ADWIN's window mean)."""
        out = {}
        for name, det in self.detectors.items():
            if isinstance(det, drift.ADWIN):
                out[name] = float(det.estimation)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "counts": dict(self.counts),
            "alarms": dict(self.alarms),
            "detectors": {name: _river_state(det) for name, det in self.detectors.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["method"] != self.method:
            raise ValueError(f"state is for scalar_method {state['method']!r}, this uses {self.method!r}")
        self.counts = {k: int(v) for k, v in state["counts"].items()}
        self.alarms = {k: int(v) for k, v in state["alarms"].items()}
        self.detectors = {}
        for name, det_state in state["detectors"].items():
            det = make_detector(self.method, self.seed)
            _load_river_state(det, det_state)
            self.detectors[name] = det


def _river_state(det: Any) -> dict[str, Any]:
    """A river detector's mutable state as JSON-able values (no pickle)."""
    if isinstance(det, drift.ADWIN):
        # the Rust helper serialises itself to bytes (what river's own pickling uses)
        raw = det._helper.__getstate__()
        return {"drift_detected": det.drift_detected, "helper": base64.b64encode(raw).decode("ascii")}
    if isinstance(det, drift.PageHinkley):
        return {
            "drift_detected": det.drift_detected,
            "mean_n": det._x_mean.n,
            "mean": det._x_mean.get(),
            "sum_increase": det._sum_increase,
            "sum_decrease": det._sum_decrease,
            "min_increase": None if math.isinf(det._min_increase) else det._min_increase,
            "max_decrease": det._max_decrease,
        }
    if isinstance(det, drift.KSWIN):
        version, internal, gauss = det._rng.getstate()
        return {
            "drift_detected": det.drift_detected,
            "window": list(det.window),
            "n": det.n,
            "p_value": float(det.p_value),
            "rng": [version, list(internal), gauss],
        }
    raise TypeError(f"no state codec for {type(det).__name__}")  # pragma: no cover


def _load_river_state(det: Any, state: dict[str, Any]) -> None:
    det._drift_detected = bool(state["drift_detected"])
    if isinstance(det, drift.ADWIN):
        det._helper.__setstate__(base64.b64decode(state["helper"]))
    elif isinstance(det, drift.PageHinkley):
        mean = stats.Mean()
        mean.n, mean._mean = float(state["mean_n"]), float(state["mean"])
        det._x_mean = mean
        det._sum_increase = float(state["sum_increase"])
        det._sum_decrease = float(state["sum_decrease"])
        det._min_increase = float("inf") if state["min_increase"] is None else float(state["min_increase"])
        det._max_decrease = float(state["max_decrease"])
    elif isinstance(det, drift.KSWIN):
        det.window.extend(state["window"])
        det.n = int(state["n"])
        det.p_value = float(state["p_value"])
        version, internal, gauss = state["rng"]
        det._rng.setstate((version, tuple(internal), gauss))
