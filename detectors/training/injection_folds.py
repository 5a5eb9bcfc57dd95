"""Honest folds for the injection detector: what a held-out source must not lend its fold.

The attack corpus and the heuristic rules are fixed across folds, so a corpus item written from
a dev row, or a rule whose words come from one, lets the "held-out" source be seen. For each
held-out source this module names:

* the corpus items **derived** from it: sharing a five-word sequence with one of its rows, or
  with a cosine of at least :data:`PARAPHRASE_COSINE` to one (a paraphrase);
* the rules **derived** from it: rules that fire on its rows and on no row of any other source
  and on none of the project's own attacks (``detectors/data/injection_project_set.jsonl``,
  ``indirect_attacks.jsonl``). A rule that generalises fires elsewhere; one that only ever
  matches one source was, in effect, written from it.

The leave-one-source-out fold then drops those items and rules, in training and scoring alike.
"""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

from detectors.injection.heuristics import FAMILIES, RULES, HeuristicResult, combine_weights

PARAPHRASE_COSINE = 0.9
SHINGLE = 5
_WORDS = re.compile(r"\w+")
_RULE_BY_NAME = {r.name: r for r in RULES}


def shingles(text: str, n: int = SHINGLE) -> set[tuple[str, ...]]:
    """Lower-cased ``n``-word sequences of ``text``.

    >>> sorted(shingles("Ignore all the previous rules now", 5))[0]
    ('all', 'the', 'previous', 'rules', 'now')
    """
    words = _WORDS.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def derived_corpus(corpus: Sequence[str], cemb: np.ndarray, rows: Sequence[str], emb: np.ndarray) -> np.ndarray:
    """Boolean mask of corpus items derived from ``rows`` (shared 5-gram or near-paraphrase)."""
    seen: set[tuple[str, ...]] = set()
    for text in rows:
        seen |= shingles(text)
    copied = np.array([bool(shingles(c) & seen) for c in corpus], dtype=bool)
    close = (cemb @ emb.T).max(axis=1) >= PARAPHRASE_COSINE if len(emb) else np.zeros(len(corpus), bool)
    return copied | close


def base_rule(name: str) -> str:
    """``"base64:override_x"`` -> ``"override_x"`` (a rule fired on a decoded payload)."""
    return name.split(":", 1)[1] if ":" in name else name


def rule_sources(results: Sequence[HeuristicResult], sources: Sequence[str]) -> dict[str, set[str]]:
    """For each rule, the sources of the rows it fired on."""
    out: dict[str, set[str]] = defaultdict(set)
    for h, src in zip(results, sources):
        for name in h.rules:
            out[base_rule(name)].add(src)
    return out


def derived_rules(held: str, fired_on: dict[str, set[str]], project_fired: Iterable[str]) -> frozenset[str]:
    """Rules that fire on ``held`` alone among the dev sources and never on the project's attacks."""
    generic = set(project_fired)
    return frozenset(r for r, srcs in fired_on.items() if srcs == {held} and r not in generic)


def without_rules(h: HeuristicResult, dropped: frozenset[str]) -> HeuristicResult:
    """``h`` as if the ``dropped`` rules did not exist (score and families recomputed)."""
    if not dropped or not any(base_rule(n) in dropped for n in h.rules):
        return h
    kept = [n for n in h.rules if base_rule(n) not in dropped]
    weights = [(_RULE_BY_NAME[base_rule(n)].weight if ":" not in n else max(_RULE_BY_NAME[base_rule(n)].weight, 0.9))
               for n in kept]
    fams = {_RULE_BY_NAME[base_rule(n)].family for n in kept} | ({"obfuscation"} if any(":" in n for n in kept) else set())
    return HeuristicResult(tuple(kept), tuple(f for f in FAMILIES if f in fams), combine_weights(weights) if kept else 0.0,
                           h.decoded if any(":" in n for n in kept) else None)
