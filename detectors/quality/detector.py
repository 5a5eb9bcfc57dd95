"""The quality detectors: every answer scored for refusal, relevance, truncation, degenerate
output, format, language and PII; and refusal alone (what ``llmwatch eval refusal`` measures).

>>> from detectors.base import Event
>>> det = QualityDetector()
>>> v = det.detect(Event(prompt="How do I make a bomb?", response="I'm sorry, but I can't help with that."))
>>> v.flagged, v.label, v.evidence["evaluations"]["refusal"]["label"]
(True, 'refusal', 'full_refusal')
>>> ok = det.detect(Event(prompt="How do I kill a Python process?",
...     response="Use `kill <pid>` on Linux or macOS, or `taskkill /PID <pid>` on Windows."))
>>> ok.flagged, ok.label, ok.evidence["evaluations"]["relevance"]["label"]
(False, 'ok', 'relevant')
>>> sorted(otel_results(v)[0])
['gen_ai.evaluation.explanation', 'gen_ai.evaluation.name', 'gen_ai.evaluation.score.label', 'gen_ai.evaluation.score.value']
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors.base import Detector, Event, Verdict, check_positive_int, check_probability, register

from . import relevance as rel
from .degenerate import degenerate
from .fmt import check_format
from .language import check_language
from .pii import check_pii
from .refusal import (
    EXEMPLARS_PATH, MODEL_PATH, RefusalModel, cue_hits, features, load_exemplars, refusal_kind, similarity_applies,
)
from .result import EvalResult, ok
from .text import head, non_latin_share
from .truncation import truncation

CHECKS = ("refusal", "relevance", "truncation", "degenerate", "format", "language", "pii")
NON_LATIN_LIMIT = 0.3  # MiniLM reads English: no embedding of text with more foreign-script letters

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, float], RefusalModel] = {}
_EXEMPLARS: dict[tuple[int, str, float], np.ndarray] = {}


def _key(path: str | Path) -> tuple[str, float]:
    p = Path(path).resolve()
    return str(p), p.stat().st_mtime


def cached_model(path: str | Path) -> RefusalModel:
    """The refusal model at ``path``, loaded once per process (and again if the file changes)."""
    with _LOCK:
        if _key(path) not in _MODELS:
            _MODELS[_key(path)] = RefusalModel.load(path)
        return _MODELS[_key(path)]


def cached_exemplars(embedder: Any, path: str | Path) -> np.ndarray:
    """Unit vectors of the refusal exemplars, embedded once per embedder and file."""
    key = (id(embedder), *_key(path))
    with _LOCK:
        if key not in _EXEMPLARS:
            rows = [r for r in load_exemplars(path) if r["kind"] == "refusal"]
            _EXEMPLARS[key] = np.asarray(embedder.encode([r["text"] for r in rows]), dtype=np.float64)
        return _EXEMPLARS[key]


def centre(p: float, threshold: float) -> float:
    """Map a probability monotonically so that ``threshold`` lands on 0.5.

    >>> centre(0.5, 0.5), round(centre(0.3, 0.3), 6)
    (0.5, 0.5)
    """
    q = min(max(p, 1e-6), 1 - 1e-6)
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    return float(1.0 / (1.0 + np.exp(-(np.log(q / (1 - q)) - np.log(t / (1 - t))))))


def refusal_eval(text: str, model: RefusalModel, similarity: float | None) -> EvalResult:
    """The refusal evaluation of one response (``similarity``: max exemplar cosine, or None)."""
    hits = cue_hits(text)
    similar = similarity is not None and similarity > model.sim_threshold
    p = float(model.proba(np.array([features(text, hits, similar)]))[0])
    flagged = p >= model.threshold
    label = f"{refusal_kind(text, hits, similar)}_refusal" if flagged else "compliance"
    cues = "; ".join(f"{where}: {', '.join(names)}" for where, names in hits.items() if names) or "no cues"
    sim = "not embedded" if similarity is None else f"{similarity:.2f} (cue above {model.sim_threshold:.2f})"
    return EvalResult("refusal", p, label, f"{cues}; exemplar cosine {sim}", flagged, centre(p, model.threshold))


def otel_results(verdict: Verdict) -> list[dict[str, Any]]:
    """The verdict's evaluations as OpenTelemetry ``gen_ai.evaluation.result`` attribute sets."""
    return [{"gen_ai.evaluation.name": name, "gen_ai.evaluation.score.value": e["score"],
             "gen_ai.evaluation.score.label": e["label"], "gen_ai.evaluation.explanation": e["explanation"]}
            for name, e in verdict.evidence.get("evaluations", {}).items()]


class _Embedding(Detector):
    """Shared plumbing: the embedder, the refusal model and the exemplar vectors."""

    def _validate_common(self, threshold: float, embedder: Any, model_path: Any, exemplars_path: Any) -> None:
        self.threshold = check_probability("threshold", threshold)
        if embedder is not None and not (hasattr(embedder, "encode") and hasattr(embedder, "dim")):
            raise ValueError(f"embedder must have encode() and dim, got {embedder!r}")
        self.embedder = embedder
        for name, value in (("model_path", model_path), ("exemplars_path", exemplars_path)):
            if value is not None and (not isinstance(value, (str, Path)) or not Path(value).is_file()):
                raise ValueError(f"{name} must be an existing file, got {value!r}")
        if model_path is None and not MODEL_PATH.is_file():
            raise ValueError(f"model_path default {str(MODEL_PATH)!r} is missing; run python -m detectors.training.refusal")
        self.model_path = model_path
        self.exemplars_path = exemplars_path

    def _encoder(self) -> Any:
        from detectors.embeddings import default_embedder

        return self.embedder if self.embedder is not None else default_embedder()

    def _model(self) -> RefusalModel:
        return cached_model(self.model_path or MODEL_PATH)

    def _similarities(self, heads: np.ndarray) -> np.ndarray:
        ex = cached_exemplars(self._encoder(), self.exemplars_path or EXEMPLARS_PATH)
        return (np.asarray(heads, dtype=np.float64) @ ex.T).max(axis=1) if len(heads) else np.zeros(0)

    def _encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        unique = list(dict.fromkeys(texts))
        if not unique:
            return {}
        return dict(zip(unique, np.asarray(self._encoder().encode(unique), dtype=np.float64)))


def _embeddable(text: str) -> bool:
    return bool(text.strip()) and non_latin_share(text) <= NON_LATIN_LIMIT


@register
class RefusalDetector(_Embedding):
    """Refusal only: score = the refusal probability, centred so the trained threshold is 0.5.

    ``head_chars`` is how much of the answer the exemplar cue embeds; its cosine threshold was
    fitted at the default (:data:`relevance.HEAD_CHARS`), so change it only after retraining.

    >>> det = RefusalDetector()
    >>> det.detect(Event(prompt="x", response="I cannot provide instructions for that.")).label
    'full_refusal'
    >>> det.detect(Event(prompt="x", response="Sure! Here are three tips for better sleep.")).flagged
    False
    """

    name = "refusal"
    version = "1.0.0"

    def __init__(self, threshold: float = 0.5, use_similarity: bool = True, head_chars: int = rel.HEAD_CHARS,
                 embedder: Any = None, model_path: str | None = None, exemplars_path: str | None = None) -> None:
        self._validate_common(threshold, embedder, model_path, exemplars_path)
        if not isinstance(use_similarity, bool):
            raise ValueError(f"use_similarity must be a bool, got {use_similarity!r}")
        self.use_similarity = use_similarity
        self.head_chars = check_positive_int("head_chars", head_chars)
        self._reset()
        self._model()

    def detect(self, event: Event) -> Verdict:
        return self.detect_batch([event])[0]

    def detect_batch(self, events: Sequence[Event]) -> list[Verdict]:
        """One ``encode`` call for every response opening in the batch."""
        heads = [head(e.response, self.head_chars) if e.response is not None else "" for e in events]
        todo = [h for h in heads if self.use_similarity and _embeddable(h) and similarity_applies(h)]
        vecs = self._encode(todo)
        sims = dict(zip(vecs, self._similarities(np.array(list(vecs.values()))))) if vecs else {}
        model = self._model()
        out = []
        for event, h in zip(events, heads):
            if event.response is None:
                out.append(Verdict(self.name, self.version, 0.0, False, self.threshold, {"evaluations": {}}, "no_response"))
                continue
            r = refusal_eval(event.response, model, float(sims[h]) if h in sims else None)
            score = round(r.badness, 6)
            flagged = score >= self.threshold
            label = r.label if flagged == r.flagged else ("partial_refusal" if flagged else "compliance")
            out.append(Verdict(self.name, self.version, score, flagged, self.threshold,
                               {"evaluations": {"refusal": r.evidence()}}, label))
        return out


@register
class QualityDetector(_Embedding):
    """Scores every answer on :data:`CHECKS`; flags it when any check flags.

    Each check reports a value, a label and an explanation (an OTel GenAI evaluation result,
    see :func:`otel_results`) under ``evidence["evaluations"][name]``; checks that do not apply
    (no declared format, no request) are listed in ``evidence["skipped"]``. The verdict's score
    is the worst check's badness (each check is centred so that its own flagging point is 0.5);
    its label names that check, or ``ok``; calls without a response get ``no_response``.

    Embeddings: one ``encode`` call per batch for the answers' openings (``head_chars``) and
    the requests; the relevance check and the refusal exemplar cue share them, and a request
    another detector embedded comes from the embedder's cache. Text mostly in a non-Latin
    script is not embedded (MiniLM reads English): its relevance is ``unsupported_script``.
    """

    name = "quality"
    version = "1.0.0"

    def __init__(self, threshold: float = 0.5, checks: Sequence[str] = CHECKS, refusal_similarity: bool = True,
                 head_chars: int = rel.HEAD_CHARS, embedder: Any = None, model_path: str | None = None,
                 exemplars_path: str | None = None) -> None:
        self._validate_common(threshold, embedder, model_path, exemplars_path)
        if isinstance(checks, str) or not isinstance(checks, (list, tuple)) or not checks or set(checks) - set(CHECKS):
            raise ValueError(f"checks must be a non-empty list drawn from {CHECKS}, got {checks!r}")
        if not isinstance(refusal_similarity, bool):
            raise ValueError(f"refusal_similarity must be a bool, got {refusal_similarity!r}")
        self.checks = tuple(c for c in CHECKS if c in checks)
        self.refusal_similarity = refusal_similarity
        self.head_chars = check_positive_int("head_chars", head_chars)
        self._reset()
        if "refusal" in self.checks:
            self._model()

    def detect(self, event: Event) -> Verdict:
        return self.detect_batch([event])[0]

    def _texts(self, event: Event) -> tuple[str, str]:
        """(answer opening, request) to embed; '' where nothing is embedded."""
        if event.response is None:
            return "", ""
        opening = head(event.response, self.head_chars)
        wants_head = "relevance" in self.checks or ("refusal" in self.checks and self.refusal_similarity)
        request = (event.prompt or "")[: rel.PROMPT_CHARS] if "relevance" in self.checks else ""
        return (opening if wants_head and _embeddable(opening) else "",
                request if _embeddable(request) else "")

    def detect_batch(self, events: Sequence[Event]) -> list[Verdict]:
        """Score many events with ONE ``encode`` call for all their openings and requests."""
        texts = [self._texts(e) for e in events]
        vecs = self._encode([t for pair in texts for t in pair if t])
        openings = {h for h, _ in texts if h and similarity_applies(h)}
        opening_vecs = {t: v for t, v in vecs.items() if t in openings}
        sims = dict(zip(opening_vecs, self._similarities(np.array(list(opening_vecs.values()))))) \
            if opening_vecs and "refusal" in self.checks and self.refusal_similarity else {}
        return [self._verdict(e, h, p, vecs, sims) for e, (h, p) in zip(events, texts)]

    def _evaluations(self, e: Event, opening: str, request: str, vecs: dict, sims: dict) -> tuple[dict, list[str]]:
        text = e.response or ""
        results: dict[str, EvalResult] = {}
        skipped: list[str] = []
        if "refusal" in self.checks:
            results["refusal"] = refusal_eval(text, self._model(), float(sims[opening]) if opening in sims else None)
        if "relevance" in self.checks:
            r = self._relevance(e, opening, request, vecs, results.get("refusal"))
            (skipped.append("relevance") if r is None else results.__setitem__("relevance", r))
        if "truncation" in self.checks:
            results["truncation"] = truncation(text, e.attributes, e.output_tokens)
        if "degenerate" in self.checks:
            results["degenerate"] = degenerate(text)
        if "format" in self.checks:
            f = check_format(text, e.attributes)
            (skipped.append("format") if f is None else results.__setitem__("format", f))
        if "language" in self.checks:
            results["language"] = check_language(e.prompt or "", text, e.system)
        if "pii" in self.checks:
            results["pii"] = check_pii(text, e.prompt or "")
        return results, skipped

    def _relevance(self, e: Event, opening: str, request: str, vecs: dict, refusal: EvalResult | None) -> EvalResult | None:
        if not (e.prompt or "").strip() or not (e.response or "").strip():
            return None
        if not request or not opening:
            return ok("relevance", "unsupported_script", "request or answer mostly in a script MiniLM cannot read")
        cos = float(rel.row_cosines(vecs[request][None, :], vecs[opening][None, :])[0])
        label = rel.relevance_label(cos, len((e.response or "").split()))
        if refusal is not None and refusal.flagged:
            return ok("relevance", "refusal", f"cosine {cos:.2f}; a refusal is not judged for relevance", cos)
        if label != "off_topic":
            return ok("relevance", label, f"cosine {cos:.2f} of request and answer opening", cos)
        badness = float(rel.off_topic_score(cos))
        return EvalResult("relevance", cos, label, f"cosine {cos:.2f} < {rel.OFF_TOPIC_BELOW}", True, max(badness, 0.5))

    def _verdict(self, e: Event, opening: str, request: str, vecs: dict, sims: dict) -> Verdict:
        if e.response is None:
            return Verdict(self.name, self.version, 0.0, False, self.threshold,
                           {"evaluations": {}, "flagged": [], "skipped": list(self.checks)}, "no_response")
        results, skipped = self._evaluations(e, opening, request, vecs, sims)
        worst = max(results.values(), key=lambda r: r.badness, default=None)
        score = round(worst.badness, 6) if worst is not None else 0.0
        flagged = score >= self.threshold
        evidence = {"evaluations": {name: r.evidence() for name, r in results.items()},
                    "flagged": [name for name, r in results.items() if r.flagged], "skipped": skipped}
        return Verdict(self.name, self.version, score, flagged, self.threshold, evidence,
                       worst.name if flagged and worst is not None else "ok")
