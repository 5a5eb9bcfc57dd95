"""Grounding: how much of a response is supported by the retrieved context.

The response is split into claims (sentences; long sentences into clauses). Each claim is
scored against every context chunk with three kinds of evidence (see :mod:`.support`):
embedding cosine, overlap of stemmed content words, and names/numbers that appear in neither
the context nor the question. Words copied from the question are excused from the "invented"
counts but never count as support. The response score is a logistic combination of the worst
claim's features: the probability that the response is not supported.

>>> from detectors.base import Event
>>> det = GroundingDetector()
>>> ctx = ("The Eiffel Tower was completed in 1889 and is 330 metres tall.",)
>>> det.detect(Event(prompt="When was the Eiffel Tower completed?", response="1889", context=ctx)).flagged
False
>>> v = det.detect(Event(prompt="When was the Eiffel Tower completed?",
...                      response="It was completed in 1925 by Gustave Whitfield.", context=ctx))
>>> v.flagged, sorted(v.evidence["unsupported"][0]["names"])
(True, ['1925', 'Gustave Whitfield'])
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

import numpy as np

from ..base import Detector, Event, Verdict, check_positive_int, check_probability, register
from . import sentences as S
from .support import (
    DEFAULT_BIAS,
    DEFAULT_WEIGHTS,
    FEATURES,
    ContextIndex,
    aggregate,
    combine,
    embedding_features,
    lexical_features,
)

DEFAULT_THRESHOLD = 0.5
CHUNK_CACHE_SIZE = 4096  # context-chunk embeddings kept between calls (~6 MB)
QUESTION_EMBED_WORDS = 128  # longest dev-set question: 76 words


def _validate_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    if not isinstance(weights, Mapping):
        raise ValueError(f"weights must be a mapping of feature name to number, got {weights!r}")
    unknown = set(weights) - set(FEATURES)
    if unknown:
        raise ValueError(f"weights has unknown feature names {sorted(unknown)!r}; known: {list(FEATURES)!r}")
    out = dict(DEFAULT_WEIGHTS)
    for k, v in weights.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ValueError(f"weights[{k!r}] must be a finite number, got {v!r}")
        out[k] = float(v)
    return out


@register
class GroundingDetector(Detector):
    """Scores how unsupported a response is by its retrieved context (higher = less supported).

    Parameters
    ----------
    threshold: flag when the score is at least this (in [0, 1]).
    embedder: anything with ``encode(list[str]) -> (n, dim)`` unit rows and ``dim``; ``None``
        uses :func:`detectors.embeddings.default_embedder` (loaded on first use).
    weights: per-feature logistic weights overriding :data:`.support.DEFAULT_WEIGHTS`.
    bias: the logistic intercept; ``None`` uses :data:`.support.DEFAULT_BIAS`.
    judge: an optional :class:`.judge.LLMJudge` consulted on a deterministic sample of events.
    """

    name = "grounding"
    version = "1.0.0"

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        embedder: Any = None,
        weights: Mapping[str, float] | None = None,
        bias: float | None = None,
        judge: Any = None,
        max_claims: int = 64,
    ) -> None:
        self.threshold = check_probability("threshold", threshold)
        # Bounds the work per event: a pathological 200k-character answer must not stall a
        # stream worker for minutes. Claims past the cap are not checked; evidence says so.
        self.max_claims = check_positive_int("max_claims", max_claims)
        if embedder is not None and not (hasattr(embedder, "encode") and hasattr(embedder, "dim")):
            raise ValueError(f"embedder must have .encode and .dim, got {embedder!r}")
        self.embedder = embedder
        self._weights = _validate_weights(weights)
        self.weights = None if weights is None else dict(weights)
        if bias is not None and (isinstance(bias, bool) or not isinstance(bias, (int, float)) or not np.isfinite(bias)):
            raise ValueError(f"bias must be a finite number or None, got {bias!r}")
        self.bias = None if bias is None else float(bias)
        self._bias = DEFAULT_BIAS if bias is None else float(bias)
        if judge is not None and not callable(getattr(judge, "judge", None)):
            raise ValueError(f"judge must have a .judge(event) method, got {judge!r}")
        self.judge = judge
        self._reset()

    def _reset(self) -> None:
        # Context passages recur across a stream (RAG retrieves the same documents), so chunk
        # embeddings are kept in a small LRU; it is a cache, never part of the configuration.
        self._chunk_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_chunk_cache"] = OrderedDict()  # do not ship cached vectors
        return state

    # -- plumbing ------------------------------------------------------------------------------
    def _embedder(self) -> Any:
        if self.embedder is None:
            from ..embeddings import default_embedder

            return default_embedder()
        return self.embedder

    # -- detection -----------------------------------------------------------------------------
    def detect(self, event: Event) -> Verdict:
        return self.detect_batch([event])[0]

    def detect_batch(self, events: Sequence[Event]) -> list[Verdict]:
        """Score many events with a single ``encode`` call over all their texts."""
        plans: list[dict[str, Any] | Verdict] = []
        texts: dict[str, int] = {}
        cache = self._chunk_cache
        cached: dict[str, np.ndarray] = {}

        def want(t: str, chunk: bool = False) -> None:
            if t in texts or t in cached:
                return
            if chunk and t in cache:
                cache.move_to_end(t)
                cached[t] = cache[t]
            else:
                texts[t] = len(texts)

        for ev in events:
            plan = self._plan(ev)
            plans.append(plan)
            if isinstance(plan, Verdict):
                continue
            for t in plan["idx"].chunks:
                want(t, chunk=True)
            for c in plan["claims"]:
                want(c)
                if plan["q_embed"]:
                    want(f"{plan['q_embed']} {c}")
            if plan["q_embed"]:
                want(plan["q_embed"])
        emb = self._embedder()
        new = np.asarray(emb.encode(list(texts)), dtype=np.float32) if texts else np.zeros((0, emb.dim), np.float32)
        for t, row in cached.items():  # append cache hits after the fresh rows
            texts[t] = len(texts)
        vecs = np.concatenate([new, np.stack(list(cached.values()))]) if cached else new
        chunk_set = {c for p in plans if not isinstance(p, Verdict) for c in p["idx"].chunks}
        for t in chunk_set:
            cache[t] = vecs[texts[t]]
            cache.move_to_end(t)
        while len(cache) > CHUNK_CACHE_SIZE:
            cache.popitem(last=False)
        out: list[Verdict] = []
        for ev, plan in zip(events, plans):
            if isinstance(plan, Verdict):
                out.append(plan)
                continue
            out.append(self._finish(ev, plan, vecs, texts))
        return out

    def _verdict(self, score: float, label: str, evidence: dict[str, Any], flagged: bool | None = None) -> Verdict:
        score = float(min(1.0, max(0.0, score)))
        return Verdict(
            detector=self.name,
            version=self.version,
            score=score,
            flagged=score >= self.threshold if flagged is None else flagged,
            threshold=self.threshold,
            evidence=evidence,
            label=label,
        )

    def _plan(self, ev: Event) -> dict[str, Any] | Verdict:
        passages = [p for p in (ev.context or ()) if isinstance(p, str) and p.strip()]
        if not passages:
            return self._verdict(
                0.0, "no_context", {"reason": "no retrieved context: grounding cannot be assessed"}, flagged=False
            )
        response = ev.response or ""
        all_claims = S.split_claims(response)
        claims = all_claims[: self.max_claims]
        if not claims:
            return self._verdict(
                0.0, "empty_response", {"reason": "the response makes no claim (empty or no words)"}, flagged=False
            )
        words = (ev.prompt or "").split()
        question = " ".join(words)
        # The question is embedded once with every claim, so its length multiplies the
        # embedding work by the number of claims: only its last QUESTION_EMBED_WORDS words
        # (where the user's question sits in a templated prompt) go into the embeddings.
        q_embed = question if len(words) <= QUESTION_EMBED_WORDS else " ".join(words[-QUESTION_EMBED_WORDS:])
        return {
            "idx": ContextIndex.build(passages, question), "claims": claims, "q_embed": q_embed,
            "unchecked": len(all_claims) - len(claims),
        }

    def _finish(self, ev: Event, plan: dict[str, Any], vecs: np.ndarray, rows: Mapping[str, int]) -> Verdict:
        idx: ContextIndex = plan["idx"]
        question: str = plan["q_embed"]
        chunk_vecs = vecs[[rows[c] for c in idx.chunks]] if idx.chunks else np.zeros((0, vecs.shape[1]), np.float32)
        q_vec = vecs[rows[question]] if question else None
        per_claim: list[dict[str, Any]] = []
        for claim in plan["claims"]:
            f: dict[str, Any] = lexical_features(claim, idx)
            qc_vec = vecs[rows[f"{question} {claim}"]] if question else None
            f.update(embedding_features(vecs[rows[claim]], qc_vec, q_vec, chunk_vecs, len(S.words(claim))))
            best = f["_best_chunk"]
            f["neg_flip"] = 1.0 if (f["_negated"] and best >= 0 and not idx.chunk_neg[best]) else 0.0
            f["_score"] = combine(f, self._weights, self._bias)
            f["_passage"] = idx.chunk_passage[best] if best >= 0 else -1
            per_claim.append(f)
        agg = aggregate(per_claim)
        score = combine(agg, self._weights, self._bias)
        unsupported = [
            {
                "sentence": claim,
                "score": round(f["_score"], 4),
                "passage": f["_passage"],
                "similarity": round(f["_best_sim"], 4),
                "names": list(f["_unsupported_names"]),
            }
            for claim, f in zip(plan["claims"], per_claim)
            if f["_score"] >= self.threshold
        ]
        n = len(per_claim)
        evidence: dict[str, Any] = {
            "claims": n,
            "supported_fraction": round(1.0 - len(unsupported) / n, 4),
            "unsupported": unsupported,
            "features": {k: round(v, 4) for k, v in agg.items()},
        }
        if plan.get("unchecked"):
            evidence["unchecked_claims"] = plan["unchecked"]
        label = "unsupported" if score >= self.threshold else "supported"
        flagged = None
        if self.judge is not None:
            score, label, flagged = self._consult_judge(ev, score, label, evidence)
        return self._verdict(score, label, evidence, flagged)

    def _consult_judge(self, ev: Event, score: float, label: str, evidence: dict[str, Any]) -> tuple[float, str, bool | None]:
        """Blend in the LLM judge's verdict when it is sampled and answers (see :mod:`.judge`)."""
        result = self.judge.judge(ev)
        if result is None:  # not sampled
            return score, label, None
        evidence["judge"] = result.as_evidence()
        if result.error is not None:
            return score, label, None
        blended = self.judge.blend(score, result)
        evidence["judge"]["local_score"] = round(score, 4)
        return blended, "judged", None


@register
class LengthBaseline(Detector):
    """A deliberately naive baseline: the score is only the response length.

    ``score = words / (words + half_words)``, so ``half_words`` words score 0.5. It exists to
    be reported beside :class:`GroundingDetector` (on HaluEval, length alone separates the
    classes; a real detector must beat it where length does not).

    >>> LengthBaseline().detect(Event(response="one two three four five six seven eight nine ten")).score
    0.5
    """

    name = "grounding_length_baseline"
    version = "1.0.0"

    def __init__(self, threshold: float = 0.5, half_words: int = 10) -> None:
        self.threshold = check_probability("threshold", threshold)
        if isinstance(half_words, bool) or not isinstance(half_words, int) or half_words <= 0:
            raise ValueError(f"half_words must be a positive integer, got {half_words!r}")
        self.half_words = half_words

    def detect(self, event: Event) -> Verdict:
        n = len((event.response or "").split())
        score = n / (n + self.half_words)
        return Verdict(self.name, self.version, score, score >= self.threshold, self.threshold,
                       {"words": n}, "length")
