"""Layer 2 of the injection detector: nearest neighbour in a curated attack corpus.

The corpus (``detectors/data/injection_attacks.jsonl``) holds hand-written attacks from
well-known public families (instruction override, DAN/developer-mode role-play, system-prompt
extraction, encoding tricks, fake delimiters, indirect injection, goal hijacking). Its
embeddings are computed once per embedder and cached; a query's score is its maximum cosine
similarity to any corpus attack.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CORPUS_PATH = DATA_DIR / "injection_attacks.jsonl"


def load_corpus(path: str | Path = CORPUS_PATH) -> list[dict[str, Any]]:
    """Rows ``{"id", "family", "text"}`` of the attack corpus (ValueError if empty or malformed)."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row.get("text"), str) or not row["text"].strip():
                raise ValueError(f"{path}:{n}: corpus row has no text")
            rows.append(row)
    if not rows:
        raise ValueError(f"attack corpus {path} is empty")
    return rows


@dataclass(frozen=True, slots=True)
class Match:
    """The nearest corpus attack to one text."""

    similarity: float
    attack_id: str
    family: str
    text: str


class AttackIndex:
    """Unit-norm corpus embeddings and a max-cosine lookup (pure numpy)."""

    def __init__(self, rows: list[dict[str, Any]], embeddings: np.ndarray) -> None:
        if len(rows) != len(embeddings):
            raise ValueError(f"{len(rows)} corpus rows but {len(embeddings)} embeddings")
        self.rows = rows
        self.embeddings = np.asarray(embeddings, dtype=np.float32)

    @classmethod
    def build(cls, embedder: Any, path: str | Path = CORPUS_PATH) -> "AttackIndex":
        rows = load_corpus(path)
        return cls(rows, embedder.encode([r["text"] for r in rows]))

    def similarities(self, queries: np.ndarray) -> np.ndarray:
        """``(n, len(corpus))`` cosine similarities of unit-norm ``queries``."""
        return np.asarray(queries, dtype=np.float32) @ self.embeddings.T

    def nearest(self, queries: np.ndarray) -> list[Match]:
        sims = self.similarities(queries)
        idx = sims.argmax(axis=1)
        out = []
        for i, j in enumerate(idx):
            row = self.rows[int(j)]
            out.append(Match(float(sims[i, j]), str(row.get("id", j)), str(row.get("family", "")), row["text"]))
        return out
