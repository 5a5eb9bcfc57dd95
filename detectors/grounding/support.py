"""Per-claim support features and the logistic combination that turns them into a score.

A *claim* is a response sentence (or a clause of a long one). For each claim we measure how
well the retrieved context backs it, with the question (the user's prompt) handled apart:
words and names copied from the question are excused from the "invented" counts but never
count as support.

Features (all in [0, 1] or [-1, 1], higher = *less* supported unless noted):

``invented``    fraction of the claim's content words found in neither the context nor the question
``unbacked``    1 - (fraction of the claim's *new* content words — those not in the question — found
                in the context); 0.5 when the claim adds no new content word (nothing to check)
``novel_ents``  names / numbers / years in the claim absent from context AND question (0, 0.5, 1 for 0, 1, 2+)
``copy_gap``    1 - fraction of claim tokens inside a bigram copied verbatim from the context
``sim_gap``     how far the best cosine(claim, context chunk) falls below ``SIM_SUPPORTED`` (0.7),
                scaled to [0, 1]; 0 for fragments under ``SIM_MIN_WORDS`` words
``q_gain_gap``  -(cos(question + claim, best chunk) - cos(question, best chunk)): does adding the
                claim to the question move it *towards* the context (supported) or away?
``neg_flip``    1 when the claim is negated ("not", "never", "n't") but its best-matching chunk is not

None of them scales with answer length by construction: they are fractions of the claim's
own words or similarities of the claim, never counts of words.

>>> idx = ContextIndex.build(["The Oberoi Group is a hotel company with its head office in Delhi."], "Where is the head office?")
>>> f = lexical_features("It is in Mumbai.", idx)
>>> (f["invented"], f["novel_ents"])
(1.0, 0.5)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from . import sentences as S

FEATURES: tuple[str, ...] = (
    "invented", "unbacked", "novel_ents", "copy_gap", "sim_gap", "q_gain_gap", "neg_flip",
)

# A MiniLM cosine of 0.7 or more between a claim and a context sentence is paraphrase level:
# full embedding support. Below it, sim_gap grows linearly to 1 at cosine 0.
SIM_SUPPORTED = 0.7
# Fragments ("Delhi", "yes") have low cosines to any sentence whatever their truth, so claims
# of fewer than this many words get no embedding evidence (sim_gap 0); the lexical features
# (copy, new-word and name overlap) judge them instead.
SIM_MIN_WORDS = 4

# Chunks longer than this many words are cut into overlapping windows before embedding
# (MiniLM truncates at 256 word pieces and a long chunk dilutes the cosine).
CHUNK_WORDS = 40


@dataclass(frozen=True)
class ContextIndex:
    """Everything lexical about one event's context and question, computed once."""

    chunks: tuple[str, ...]          # embeddable pieces of the context
    chunk_passage: tuple[int, ...]   # passage index of each chunk
    chunk_neg: tuple[bool, ...]      # does the chunk contain a negation
    ctx_stems: frozenset[str]
    ctx_numbers: frozenset[str]
    q_stems: frozenset[str]
    q_numbers: frozenset[str]
    ctx_ngrams: Mapping[int, frozenset[tuple[str, ...]]]
    question: str

    @classmethod
    def build(cls, passages: Sequence[str], question: str) -> "ContextIndex":
        chunks: list[str] = []
        owner: list[int] = []
        for p_i, passage in enumerate(passages):
            for sent in S.split_sentences(passage):
                toks = sent.split()
                if len(toks) <= CHUNK_WORDS:
                    chunks.append(sent)
                    owner.append(p_i)
                    continue
                step = CHUNK_WORDS // 2
                for start in range(0, len(toks) - step, step):
                    chunks.append(" ".join(toks[start : start + CHUNK_WORDS]))
                    owner.append(p_i)
        joined = " ".join(passages)
        ctx_tokens = S.tokens_lower(joined)
        return cls(
            chunks=tuple(chunks),
            chunk_passage=tuple(owner),
            chunk_neg=tuple(S.has_negation(c) for c in chunks),
            ctx_stems=frozenset(S.content_stems(joined)),
            ctx_numbers=frozenset(S.numbers_in(joined)),
            q_stems=frozenset(S.content_stems(question)),
            q_numbers=frozenset(S.numbers_in(question)),
            ctx_ngrams={1: frozenset(S.ngrams(ctx_tokens, 1)), 2: frozenset(S.ngrams(ctx_tokens, 2))},
            question=question,
        )


def lexical_features(claim: str, idx: ContextIndex) -> dict[str, object]:
    """The word-level features of one claim (no embeddings), plus the names behind them."""
    stems = S.content_list(claim)
    ctx, q = idx.ctx_stems, idx.q_stems
    if stems:
        invented = sum(1 for s in stems if s not in ctx and s not in q) / len(stems)
    else:
        invented = 0.0
    new = [s for s in stems if s not in q]
    unbacked = 1.0 - sum(1 for s in new if s in ctx) / len(new) if new else 0.5
    known = ctx | q
    bad_ents = []
    for ent in S.entities_in(claim):
        parts = [S.stem(w.lower()) for w in S.words(ent) if not w[0].isdigit()]
        if parts and not all(p in known for p in parts):
            bad_ents.append(ent)
    bad_nums = sorted(S.numbers_in(claim) - idx.ctx_numbers - idx.q_numbers)
    n_bad = len(bad_ents) + len(bad_nums)
    copy = S.copy_coverage(S.tokens_lower(claim), idx.ctx_ngrams)
    return {
        "invented": invented,
        "unbacked": unbacked,
        "novel_ents": min(n_bad, 2) / 2.0,
        "copy_gap": 1.0 - copy,
        "_unsupported_names": bad_ents + bad_nums,
        "_negated": S.has_negation(claim),
    }


def embedding_features(
    claim_vec: np.ndarray,
    qclaim_vec: np.ndarray | None,
    q_vec: np.ndarray | None,
    chunk_vecs: np.ndarray,
    n_words: int = 99,
) -> dict[str, float]:
    """Similarity features of one claim against the context chunks (unit vectors)."""
    if chunk_vecs.shape[0] == 0:
        return {"sim_gap": 1.0, "q_gain_gap": 0.0, "_best_chunk": -1, "_best_sim": 0.0}
    sims = chunk_vecs @ claim_vec
    best = int(np.argmax(sims))
    best_sim = float(sims[best])
    if qclaim_vec is not None and q_vec is not None:
        gain = float(np.max(chunk_vecs @ qclaim_vec) - np.max(chunk_vecs @ q_vec))
    else:
        gain = 0.0
    if n_words < SIM_MIN_WORDS:
        sim_gap = 0.0
    else:
        sim_gap = float(np.clip((SIM_SUPPORTED - best_sim) / SIM_SUPPORTED, 0.0, 1.0))
    return {
        "sim_gap": sim_gap,
        "q_gain_gap": float(np.clip(-gain, -1.0, 1.0)),
        "_best_chunk": best,
        "_best_sim": best_sim,
    }


def aggregate(per_claim: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Response-level features: the worst claim on each feature (max of unsupportedness)."""
    return {k: max(float(c[k]) for c in per_claim) for k in FEATURES}


# --- the combination -------------------------------------------------------------------------
# Logistic weights over FEATURES, fitted by ``python -m detectors.training.grounding``: weighted L2
# logistic regression (C=1, raw features, weights constrained >= 0 because every feature is an
# "unsupportedness"), on all 1718 dev rows with each source given equal total weight and the
# classes balanced within a source. Out-of-sample AUROC (5-fold and leave-one-source-out) is in
# bench/results/grounding.md. "invented" fits to 0 (redundant with "unbacked"); it stays in the
# evidence. Threshold 0.5 is the balanced-prior decision point of this fit, not a tuned value.
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "invented": 0.000,
    "unbacked": 1.900,
    "novel_ents": 4.197,
    "copy_gap": 1.862,
    "sim_gap": 1.959,
    "q_gain_gap": 0.818,
    "neg_flip": 0.975,
}
DEFAULT_BIAS: float = -2.230


def combine(features: Mapping[str, float], weights: Mapping[str, float], bias: float) -> float:
    """``sigmoid(bias + sum(w_k * f_k))``: the probability the claim/response is unsupported."""
    z = bias + sum(weights[k] * float(features[k]) for k in FEATURES)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
