"""Relevance of an answer to the user's request: MiniLM cosine of the request and the answer's opening.

The request is ``Event.prompt`` (the last user message, never the system prompt). Only the
answer's first :data:`HEAD_CHARS` characters are embedded: on the XSTest compliant answers the
opening separates an answer from the answer to the most similar *other* question as well as
the whole answer does (AUROC 0.96-0.99 for 200 characters, 0.97-0.996 for the whole answer,
``bench/results/refusal.md``) at a fraction of the tokens. The refusal check reuses the same
vector for its exemplar similarity, and a prompt the injection or drift detector has embedded
comes from the embedder's cache.

An answer is called off-topic when the cosine is below :data:`OFF_TOPIC_BELOW` and it has at
least :data:`MIN_WORDS` words: short factual answers ("Arthur's Magazine") have low cosines
to their question even when right (HaluEval QA: median 0.22), so they are scored, not flagged.

>>> relevance_label(0.8, 40), relevance_label(0.05, 40), relevance_label(0.05, 2)
('relevant', 'off_topic', 'too_short')
>>> round(float(off_topic_score(OFF_TOPIC_BELOW)), 2)
0.5
"""
from __future__ import annotations

import numpy as np

HEAD_CHARS = 200
PROMPT_CHARS = 4000  # longer requests are embedded by their first 4000 characters
OFF_TOPIC_BELOW = 0.15  # XSTest own answers below it: 0.2%; another question's answer: 88%
MIN_WORDS = 8
_SLOPE = 20.0  # logistic slope of the off-topic score around the threshold


def relevance_label(cosine: float, n_words: int) -> str:
    """``relevant``, ``off_topic`` or ``too_short`` (short answers are scored but never flagged)."""
    if n_words < MIN_WORDS:
        return "too_short"
    return "off_topic" if cosine < OFF_TOPIC_BELOW else "relevant"


def off_topic_score(cosine: float | np.ndarray) -> np.ndarray:
    """A badness in [0, 1] that is 0.5 at :data:`OFF_TOPIC_BELOW` and grows as the cosine falls."""
    return 1.0 / (1.0 + np.exp(-_SLOPE * (OFF_TOPIC_BELOW - np.asarray(cosine, dtype=np.float64))))


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b`` (rows are unit vectors).

    >>> row_cosines(np.array([[1.0, 0.0]]), np.array([[0.6, 0.8]])).tolist()
    [0.6]
    """
    return np.clip(np.einsum("ij,ij->i", np.asarray(a, np.float64), np.asarray(b, np.float64)), -1.0, 1.0)
