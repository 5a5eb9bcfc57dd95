"""The drift detector: per stream key, embedding drift (MMD² test) plus scalar drift (river).

Per key ``(app, model, prompt_version)`` it keeps reference/current windows of prompt and
response embeddings (:mod:`detectors.drift.reference`) and one river detector per scalar signal
(:mod:`detectors.drift.scalar`). Once a signal's windows are full it runs the MMD² permutation
test (:mod:`detectors.drift.embedding`) every ``check_every`` events of that signal.

False alarms. Each test is significant when its p-value is below ``alpha`` divided by the
number of embedding signals the key has (Bonferroni across prompt and response). The tests
are repeated on overlapping windows, so a per-test level alone would be spent many times over
a long stream; an alarm therefore needs ``consecutive`` significant tests in a row. Under no
drift a significant test is a rare, short-lived excursion; a real change keeps every later
window significant, so the requirement costs ``(consecutive - 1) * check_every`` events of delay
and removes most of the excursions. The defaults were chosen from the false-alarm rate on
resampled no-drift streams (``bench/results/drift.md``).

>>> import zlib
>>> import numpy as np
>>> from detectors.base import Event
>>> class Toy:  # a stand-in embedder: "a…" texts near one direction, "b…" near another
...     dim = 8
...     def encode(self, texts):
...         out = []
...         for t in texts:
...             rng = np.random.default_rng(zlib.crc32(t.encode()))
...             v = rng.normal(size=8) + (4.0 if t[0] == "a" else -4.0) * np.eye(8)[0]
...             out.append(v / np.linalg.norm(v))
...         return np.array(out, dtype=np.float32)
>>> det = DriftDetector(reference_size=60, window_size=30, check_every=5, embedder=Toy())
>>> texts = [f"a{i}" for i in range(200)] + [f"b{i}" for i in range(100)]
>>> verdicts = det.detect_batch([Event(prompt=t, app="demo") for t in texts])
>>> first = next(i for i, v in enumerate(verdicts) if v.flagged)
>>> 200 <= first < 230, verdicts[first].evidence["signals"]
(True, ['prompt_embedding'])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from detectors.base import Detector, Event, Verdict, check_positive_int, check_probability, register

from .embedding import mmd_test
from .reference import POLICIES, Windows
from .scalar import METHODS, ScalarDrift

TEXT_SIGNALS = ("prompt", "response")
STATE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Summary of one stream key for the periodic drift report."""

    key: tuple[str, str, str]
    n_events: int
    policy: str
    reference_sizes: dict[str, int]
    current_sizes: dict[str, int]
    p_values: dict[str, float]
    statistics: dict[str, float]
    n_tests: dict[str, int]
    n_alarms: int
    last_alarm_index: int | None
    last_alarm_signals: tuple[str, ...]
    scalar_alarms: dict[str, int]
    scalar_levels: dict[str, float]


class _TextState:
    """Windows and test bookkeeping for one text signal of one key."""

    def __init__(self, policy: str, reference_size: int, window_size: int, check_every: int) -> None:
        self.windows = Windows(policy, reference_size, window_size)
        self.check_every = check_every
        self.since_test = check_every - 1  # the first test runs as soon as the windows are full
        self.n_tests = 0
        self.consecutive = 0
        self.n_seen = 0
        self.p_value: float | None = None
        self.statistic: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "windows": self.windows.state_dict(),
            "n_seen": self.n_seen,
            "since_test": self.since_test,
            "n_tests": self.n_tests,
            "consecutive": self.consecutive,
            "p_value": self.p_value,
            "statistic": self.statistic,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.windows.load_state_dict(state["windows"])
        self.n_seen = int(state["n_seen"])
        self.since_test = int(state["since_test"])
        self.n_tests = int(state["n_tests"])
        self.consecutive = int(state["consecutive"])
        self.p_value = None if state["p_value"] is None else float(state["p_value"])
        self.statistic = None if state["statistic"] is None else float(state["statistic"])


class _KeyState:
    """Everything the detector keeps for one stream key."""

    def __init__(self, det: "DriftDetector") -> None:
        self.n_events = 0
        self.text = {
            s: _TextState(det.policy, det.reference_size, det.window_size, det.check_every) for s in TEXT_SIGNALS
        }
        self.scalar = ScalarDrift(det.scalar_method, det.seed)
        self.n_alarms = 0
        self.last_alarm_index: int | None = None
        self.last_alarm_signals: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        return {
            "n_events": self.n_events,
            "text": {s: t.state_dict() for s, t in self.text.items()},
            "scalar": self.scalar.state_dict(),
            "n_alarms": self.n_alarms,
            "last_alarm_index": self.last_alarm_index,
            "last_alarm_signals": list(self.last_alarm_signals),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n_events = int(state["n_events"])
        for s, t in self.text.items():
            t.load_state_dict(state["text"][s])
        self.scalar.load_state_dict(state["scalar"])
        self.n_alarms = int(state["n_alarms"])
        self.last_alarm_index = None if state["last_alarm_index"] is None else int(state["last_alarm_index"])
        self.last_alarm_signals = tuple(state["last_alarm_signals"])


@register
class DriftDetector(Detector):
    """Embedding and scalar drift per stream key; ``update`` (= ``detect``) once per event.

    Parameters: ``reference_size`` / ``window_size`` embeddings in the reference / current
    window; a test every ``check_every`` events once both are full; ``alpha`` the per-test level
    (split across the key's text signals); ``consecutive`` significant tests in a row raise an
    alarm; ``n_permutations`` for the p-value; ``policy`` ``"fixed"`` or ``"rolling"``;
    ``scalar_method`` the river detector for scalar signals; ``seed`` for the permutations;
    ``embedder`` anything with ``encode``/``dim`` (default: the process-wide one, loaded lazily
    and never pickled).
    """

    name = "drift"
    version = "1.0.0"

    def __init__(
        self,
        reference_size: int = 300,
        window_size: int = 100,
        check_every: int = 10,
        alpha: float = 0.005,
        consecutive: int = 4,
        n_permutations: int = 500,
        policy: str = "rolling",
        scalar_method: str = "adwin",
        seed: int = 0,
        embedder: Any = None,
    ) -> None:
        self.reference_size = check_positive_int("reference_size", reference_size)
        self.window_size = check_positive_int("window_size", window_size)
        if reference_size < 2 or window_size < 2:
            raise ValueError(
                f"reference_size and window_size must be at least 2, got {reference_size!r} and {window_size!r}"
            )
        self.check_every = check_positive_int("check_every", check_every)
        self.alpha = check_probability("alpha", alpha)
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
        self.consecutive = check_positive_int("consecutive", consecutive)
        self.n_permutations = check_positive_int("n_permutations", n_permutations)
        if (1.0 / (1 + n_permutations)) >= self.alpha / len(TEXT_SIGNALS):
            raise ValueError(
                f"n_permutations={n_permutations!r} is too few for alpha={alpha!r}: the smallest p-value "
                f"1/(1+n_permutations) must be below alpha/{len(TEXT_SIGNALS)}"
            )
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        self.policy = policy
        if scalar_method not in METHODS:
            raise ValueError(f"scalar_method must be one of {METHODS}, got {scalar_method!r}")
        self.scalar_method = scalar_method
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        if embedder is not None and not (hasattr(embedder, "encode") and hasattr(embedder, "dim")):
            raise ValueError(f"embedder must have encode() and dim, got {embedder!r}")
        self.embedder = embedder
        self._reset()

    # -- state ---------------------------------------------------------------------------

    def _reset(self) -> None:
        self._keys: dict[tuple[str, str, str], _KeyState] = {}
        self._embedder_obj = self.embedder

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["embedder"] = None  # the model is process state, restored lazily
        state["_embedder_obj"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def clone(self) -> "DriftDetector":
        """Same configuration, fresh state, the same (shared, not copied) embedder."""
        params = self._params()
        return type(self)(**params)

    def _get_embedder(self) -> Any:
        if self._embedder_obj is None:
            from detectors.embeddings import default_embedder

            self._embedder_obj = default_embedder()
        return self._embedder_obj

    def set_embedder(self, embedder: Any) -> None:
        """Use ``embedder`` from now on (e.g. after unpickling in a process with its own model)."""
        self.embedder = self._embedder_obj = embedder

    def keys(self) -> list[tuple[str, str, str]]:
        """The stream keys seen so far."""
        return list(self._keys)

    def reset(self, key: tuple[str, str, str] | None = None) -> None:
        """Forget one key (e.g. after an operator accepted a change) or, with no key, all of them."""
        if key is None:
            self._keys.clear()
        else:
            self._keys.pop(tuple(key), None)  # type: ignore[arg-type]

    def state_dict(self, key: tuple[str, str, str] | None = None) -> dict[str, Any]:
        """All state (or one key's) in JSON-able types, for a Faust table; embeddings as base64 float16."""
        keys = self._keys if key is None else {tuple(key): self._keys[tuple(key)]}  # type: ignore[index]
        return {
            "format": STATE_FORMAT,
            "detector": self.name,
            "version": self.version,
            "config": self._config(),
            "keys": [{"key": list(k), "state": s.state_dict()} for k, s in keys.items()],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore keys saved by :meth:`state_dict` (merged into the current keys)."""
        if state.get("format") != STATE_FORMAT or state.get("detector") != self.name:
            raise ValueError(f"not a drift state dict of format {STATE_FORMAT}: {state.get('format')!r}")
        if state["config"] != self._config():
            raise ValueError(f"state was saved with config {state['config']!r}, this detector has {self._config()!r}")
        for item in state["keys"]:
            ks = _KeyState(self)
            ks.load_state_dict(item["state"])
            self._keys[tuple(item["key"])] = ks  # type: ignore[index]

    def _config(self) -> dict[str, Any]:
        return {k: v for k, v in self._params().items() if k != "embedder"}

    # -- detection -----------------------------------------------------------------------

    def update(self, event: Event) -> Verdict:
        """Feed one event (embedding its texts now) and answer for it."""
        texts = _texts(event)
        vectors = dict(zip(texts, self._get_embedder().encode(list(texts.values())))) if texts else {}
        return self._update(event, vectors)

    def detect(self, event: Event) -> Verdict:
        return self.update(event)

    def detect_batch(self, events: Sequence[Event]) -> list[Verdict]:
        """Embed every text of the batch in one ``encode`` call, then update in order."""
        per_event = [_texts(e) for e in events]
        flat = [t for texts in per_event for t in texts.values()]
        if not flat:
            return [self._update(e, {}) for e in events]
        matrix = self._get_embedder().encode(flat)
        out, i = [], 0
        for event, texts in zip(events, per_event):
            vectors = {}
            for signal in texts:
                vectors[signal] = matrix[i]
                i += 1
            out.append(self._update(event, vectors))
        return out

    def _update(self, event: Event, vectors: dict[str, np.ndarray]) -> Verdict:
        key = event.stream_key
        ks = self._keys.get(key)
        if ks is None:
            ks = self._keys[key] = _KeyState(self)
        index = ks.n_events
        ks.n_events += 1

        for signal, vec in vectors.items():
            ts = ks.text[signal]
            ts.windows.add(vec)
            ts.n_seen += 1
            if ts.windows.ready:
                ts.since_test += 1

        # Bonferroni across the text signals this key carries
        n_active = sum(1 for t in ks.text.values() if t.n_seen) or 1
        level = self.alpha / n_active
        tested, drifted = [], []
        for signal, ts in ks.text.items():
            if signal not in vectors or not ts.windows.ready or ts.since_test < self.check_every:
                continue
            result = mmd_test(
                ts.windows.reference(),
                ts.windows.current(),
                n_permutations=self.n_permutations,
                seed=_test_seed(self.seed, signal, ts.n_tests),
            )
            ts.since_test = 0
            ts.n_tests += 1
            ts.p_value, ts.statistic = result.p_value, result.statistic
            ts.consecutive = ts.consecutive + 1 if result.p_value < level else 0
            tested.append(signal)
            if ts.consecutive >= self.consecutive:
                drifted.append(f"{signal}_embedding")

        drifted.extend(ks.scalar.update(event))

        evidence = {
            "key": list(key),
            "index": index,
            "tested": tested,
            "p_values": {s: t.p_value for s, t in ks.text.items() if t.p_value is not None},
            "statistics": {s: t.statistic for s, t in ks.text.items() if t.statistic is not None},
            "reference_size": {s: t.windows.n_reference for s, t in ks.text.items()},
            "current_size": {s: t.windows.n_current for s, t in ks.text.items()},
            "consecutive": {s: t.consecutive for s, t in ks.text.items()},
            "level": level,
            "signals": drifted,
        }
        adjusted = [min(1.0, t.p_value * n_active) for t in ks.text.values() if t.p_value is not None]
        score = 1.0 - min(adjusted) if adjusted else 0.0
        if drifted:
            ks.n_alarms += 1
            ks.last_alarm_index = index
            ks.last_alarm_signals = tuple(drifted)
            if any(s.endswith("_embedding") for s in drifted):
                for ts in ks.text.values():
                    ts.windows.after_alarm()
                    ts.since_test = self.check_every - 1
                    ts.consecutive = 0
            score, label = 1.0, "alarm"
        elif tested:
            label = "tested"
        elif any(t.n_seen and t.windows.n_reference < self.reference_size for t in ks.text.values()):
            label = "warming_up"
        else:
            label = "waiting"
        return Verdict(
            detector=self.name,
            version=self.version,
            score=float(min(max(score, 0.0), 1.0)),
            flagged=bool(drifted),
            threshold=1.0 - self.alpha,
            evidence=evidence,
            label=label,
        )

    # -- reporting -----------------------------------------------------------------------

    def report(self, key: tuple[str, str, str]) -> DriftReport:
        """A frozen summary of one key (raises KeyError for a key never seen)."""
        ks = self._keys[tuple(key)]  # type: ignore[index]
        return DriftReport(
            key=tuple(key),  # type: ignore[arg-type]
            n_events=ks.n_events,
            policy=self.policy,
            reference_sizes={s: t.windows.n_reference for s, t in ks.text.items()},
            current_sizes={s: t.windows.n_current for s, t in ks.text.items()},
            p_values={s: t.p_value for s, t in ks.text.items() if t.p_value is not None},
            statistics={s: t.statistic for s, t in ks.text.items() if t.statistic is not None},
            n_tests={s: t.n_tests for s, t in ks.text.items()},
            n_alarms=ks.n_alarms,
            last_alarm_index=ks.last_alarm_index,
            last_alarm_signals=ks.last_alarm_signals,
            scalar_alarms=dict(ks.scalar.alarms),
            scalar_levels=ks.scalar.estimates(),
        )


def _texts(event: Event) -> dict[str, str]:
    """The texts of an event that feed embedding windows (blank ones are skipped)."""
    out = {}
    if event.prompt and event.prompt.strip():
        out["prompt"] = event.prompt
    if event.response and event.response.strip():
        out["response"] = event.response
    return out


def _test_seed(seed: int, signal: str, n_tests: int) -> np.random.SeedSequence:
    """A permutation seed fixed by (seed, signal, test number): no RNG state to save."""
    return np.random.SeedSequence([seed, TEXT_SIGNALS.index(signal), n_tests])
