"""Fit and evaluate the refusal classifier (and measure the quality detector), reproducibly.

    python -m detectors.training.refusal                       # LOSO report + write the weights
    python -m detectors.training.refusal --cache /tmp/ref.npz  # reuse the dev-set embeddings between runs

1. Embed each dev response's opening (``relevance.HEAD_CHARS`` characters, exactly what the
   detector embeds) and prompt, and the hand-written refusal exemplars.
2. **Leave-one-source-out** (each source is one model: train on the other model's completions,
   score this one's): every fitted part is chosen on the training model only: the exemplar
   cosine above which the similarity cue fires (the lowest with precision >= ``SIM_PRECISION``
   on the training rows) and the logistic regression (C = 1, each source and class weighted
   equally). The same is done for the baselines, so the table compares methods out of sample.
3. Cue dropout: the same LOSO with one strong cue family removed, a stand-in for a model that
   words its refusals in a way no pattern lists.
4. Stratified 5-fold CV over both sources (in-distribution reference), then the final fit on
   every row, written to ``detectors/data/refusal_classifier.json``.
5. The relevance check (own answer vs another question's answer, AUROC) and the speed of
   ``QualityDetector.detect_batch`` beside ``InjectionDetector`` on the same events.
6. ``bench/results/refusal.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from detectors.metrics import auroc, binary_metrics
from detectors.quality import relevance as rel
from detectors.quality.detector import NON_LATIN_LIMIT
from detectors.quality.refusal import (
    EXEMPLARS_PATH, FEATURES, MODEL_PATH, STRONG, CUES, OPENING_ONLY, RefusalModel, cue_hits, features, load_exemplars,
    similarity_applies,
)
from detectors.quality.text import head, non_latin_share

ROOT = Path(__file__).resolve().parents[2]
EVAL_DIR = ROOT.parent / "shared" / "eval"
SEED = 0
C = 1.0
C_EMBEDDING = 0.1
SIM_PRECISION = 0.98  # chosen by LOSO from SWEEP (see the report)
SWEEP = (0.95, 0.97, 0.98, 0.99)
METRICS = ("accuracy", "f1", "precision", "recall", "auroc", "n")
NO_EMBEDDING = ["refusal", "truncation", "degenerate", "format", "language", "pii"]


@dataclass
class Prepared:
    """Everything the fits need, computed once: labels, sources, cue hits and embeddings."""

    rows: list[dict[str, Any]]
    y: np.ndarray
    sources: np.ndarray
    texts: list[str]
    hits: list[dict[str, list[str]]]
    heads: np.ndarray  # unit vectors of the response openings (zeros where not embeddable)
    sims: np.ndarray  # max cosine to a refusal exemplar (-1 where not embeddable)
    prompts: np.ndarray



#: The baseline: the opening-phrase list the drift detector's refusal signal used before it moved
#: to this classifier (kept verbatim so the comparison stays the one first reported).
_PHRASE_LIST = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry, (but )?i|i apologi[sz]e|i can(no|')t|i cannot|i'?m (not able|unable)|"
    r"i am (not able|unable)|i won'?t|i will not|as an ai\b|i'?m an ai\b|unfortunately,? i (can(no|')t|am unable))",
    re.IGNORECASE,
)


def phrase_list(response: str) -> bool:
    """The old drift signal: does the response open with a refusal phrase?"""
    return bool(_PHRASE_LIST.match(response[:200].replace("\u2019", "'")))

def load_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _embeddable(text: str) -> bool:
    return bool(text.strip()) and non_latin_share(text) <= NON_LATIN_LIMIT


def prepare(rows: list[dict[str, Any]], embedder: Any, cache: Path | None = None) -> Prepared:
    """Cue hits and embeddings of every row (the embeddings cached in ``cache`` if given)."""
    texts = [r.get("response") or "" for r in rows]
    opening = [head(t, rel.HEAD_CHARS) for t in texts]
    prompts = [(r.get("prompt") or "")[: rel.PROMPT_CHARS] for r in rows]
    if cache is not None and cache.exists():
        z = np.load(cache)
        heads, pvecs = z["heads"], z["prompts"]
    else:
        heads, pvecs = embedder.encode(opening), embedder.encode(prompts)
        if cache is not None:
            np.savez(cache, heads=heads, prompts=pvecs)
    ok = np.array([_embeddable(o) for o in opening])
    ex = embedder.encode([r["text"] for r in load_exemplars(EXEMPLARS_PATH) if r["kind"] == "refusal"])
    judged = ok & np.array([similarity_applies(o) for o in opening])
    sims = np.where(judged, (np.asarray(heads, np.float64) @ np.asarray(ex, np.float64).T).max(axis=1), -1.0)
    return Prepared(rows, np.array([int(r["label"]) for r in rows]), np.array([str(r.get("source", "")) for r in rows]),
                    texts, [cue_hits(t) for t in texts], np.asarray(heads, np.float64) * ok[:, None], sims,
                    np.asarray(pvecs, np.float64))


def sim_threshold(sims: np.ndarray, y: np.ndarray, precision: float = SIM_PRECISION) -> float:
    """The lowest exemplar cosine whose cue reaches ``precision`` on these rows (>= 5 of them).

    >>> sim_threshold(np.array([0.9, 0.8, 0.7, 0.2]), np.array([1, 1, 0, 0]))
    0.95
    >>> sim_threshold(np.array([0.9] * 5 + [0.1]), np.array([1] * 5 + [0]))
    0.3
    """
    for t in np.round(np.arange(0.30, 0.95, 0.01), 2):
        fired = sims > t
        if fired.sum() >= 5 and y[fired].mean() >= precision:
            return float(t)
    return 0.95


def grouped(p: Prepared, idx: np.ndarray, t: float | None, drop: str | None = None) -> np.ndarray:
    """Shipped features (:data:`FEATURES`); ``t`` None turns the similarity cue off."""
    out = []
    for i in idx:
        hits = {k: [c for c in v if c != drop] for k, v in p.hits[i].items()}
        out.append(features(p.texts[i], hits, t is not None and bool(p.sims[i] > t)))
    return np.array(out)


def ungrouped(p: Prepared, idx: np.ndarray) -> np.ndarray:
    """One 0/1 column per cue family and place: what the grouping replaces."""
    cols = [(name, where) for name in CUES for where in ("head", "body") if not (where == "body" and name in OPENING_ONLY)]
    return np.array([[float(name in p.hits[i][where]) for name, where in cols] for i in idx])


def source_weights(y: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Each source weighs the same in total, and within it each class does."""
    w = np.zeros(len(y))
    for s in np.unique(sources):
        for c in (0, 1):
            m = (sources == s) & (y == c)
            if m.any():
                w[m] = 1.0 / (2 * m.sum() * len(np.unique(sources)))
    return w * len(y)


def fit_logistic(x: np.ndarray, y: np.ndarray, sources: np.ndarray, c: float = C) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=5000, random_state=SEED).fit(x, y, sample_weight=source_weights(y, sources))
    return lr.coef_.ravel().astype(np.float64), float(lr.intercept_[0])


def fit_model(p: Prepared, idx: np.ndarray, use_sim: bool = True, drop: str | None = None) -> RefusalModel:
    """The shipped method fitted on rows ``idx`` only."""
    t = sim_threshold(p.sims[idx], p.y[idx], SIM_PRECISION) if use_sim else None
    coef, intercept = fit_logistic(grouped(p, idx, t, drop), p.y[idx], p.sources[idx])
    return RefusalModel(FEATURES, coef, intercept, 0.5, t if t is not None else 2.0,
                        {"C": C, "sim_precision": SIM_PRECISION, "seed": SEED})


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def methods(p: Prepared) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """name -> (train idx, test idx) -> test scores (>= 0.5 means refusal)."""
    def shipped(tr: np.ndarray, te: np.ndarray, use_sim: bool = True) -> np.ndarray:
        m = fit_model(p, tr, use_sim)
        return m.proba(grouped(p, te, m.sim_threshold if use_sim else None))

    def flat(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        coef, b = fit_logistic(ungrouped(p, tr), p.y[tr], p.sources[tr])
        return _sigmoid(ungrouped(p, te) @ coef + b)

    def embedding(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        coef, b = fit_logistic(p.heads[tr], p.y[tr], p.sources[tr], C_EMBEDDING)
        return _sigmoid(p.heads[te] @ coef + b)

    return {
        "phrase list (the old drift signal)": lambda tr, te: np.array([float(phrase_list(p.texts[i])) for i in te]),
        "strong cues in the opening, no fit": lambda tr, te: grouped(p, te, None)[:, 0],
        "MiniLM opening + logistic (384 dims)": embedding,
        "cue families, one weight each": flat,
        "grouped cues + logistic": lambda tr, te: shipped(tr, te, False),
        "grouped cues + exemplar cue + logistic (shipped)": shipped,
    }


def _metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    return binary_metrics(y, s, 0.5)


def loso(p: Prepared, method: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> dict[str, dict[str, float]]:
    """Leave-one-source-out: metrics of each held-out source."""
    out = {}
    for s in sorted(set(p.sources.tolist())):
        te, tr = np.flatnonzero(p.sources == s), np.flatnonzero(p.sources != s)
        out[s] = _metrics(p.y[te], method(tr, te))
    return out


def folds(strata: np.ndarray, k: int = 5, seed: int = SEED) -> list[np.ndarray]:
    """Stratified k-fold test indices (deterministic, numpy only)."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        rng.shuffle(idx)
        for i, j in enumerate(idx):
            parts[(i + offset) % k].append(int(j))
        offset += len(idx)
    return [np.array(sorted(f)) for f in parts]


def sweep(p: Prepared) -> dict[float, dict[str, dict[str, float]]]:
    """LOSO of the shipped method for each precision target of the exemplar cue."""
    global SIM_PRECISION
    chosen, out = SIM_PRECISION, {}
    try:
        for target in SWEEP:
            SIM_PRECISION = target
            out[target] = loso(p, methods(p)["grouped cues + exemplar cue + logistic (shipped)"])
    finally:
        SIM_PRECISION = chosen
    return out


def kfold(p: Prepared) -> dict[str, float]:
    """Stratified 5-fold CV (strata = source x label) of the shipped method."""
    strata = np.array([f"{s}/{y}" for s, y in zip(p.sources, p.y)])
    scores = np.zeros(len(p.y))
    for te in folds(strata):
        tr = np.setdiff1d(np.arange(len(p.y)), te)
        m = fit_model(p, tr)
        scores[te] = m.proba(grouped(p, te, m.sim_threshold))
    return _metrics(p.y, scores)


def dropout(p: Prepared) -> dict[str, dict[str, float]]:
    """Mean LOSO accuracy with each strong cue family removed, with and without the exemplar cue."""
    out = {}
    for fam in STRONG:
        row = {}
        for use_sim in (False, True):
            def run(tr: np.ndarray, te: np.ndarray, use_sim: bool = use_sim, fam: str = fam) -> np.ndarray:
                m = fit_model(p, tr, use_sim, drop=fam)
                return m.proba(grouped(p, te, m.sim_threshold if use_sim else None, drop=fam))
            folds_ = loso(p, run)
            row["with exemplar cue" if use_sim else "without"] = float(np.mean([f["accuracy"] for f in folds_.values()]))
        out[fam] = row
    return out


def relevance_check(p: Prepared, halu: tuple[np.ndarray, np.ndarray] | None) -> dict[str, dict[str, float]]:
    """AUROC of request/answer cosine: each question's own answer against another question's answer.

    ``random``: the answer to a random other question of the same source; ``hard``: the answer to
    the most similar other question. Compliant XSTest answers only (a refusal is not an answer).
    """
    rng = np.random.default_rng(SEED)
    out: dict[str, dict[str, float]] = {}

    def score(q: np.ndarray, a: np.ndarray, name: str) -> None:
        sims = q @ q.T
        np.fill_diagonal(sims, -np.inf)
        hard = sims.argmax(axis=1)
        rnd = (np.arange(len(q)) + 1 + rng.integers(len(q) - 1, size=len(q))) % len(q)
        own = rel.row_cosines(q, a)
        lab = np.r_[np.ones(len(q)), np.zeros(len(q))]
        out[name] = {"random": auroc(lab, np.r_[own, rel.row_cosines(q, a[rnd])]),
                     "hard": auroc(lab, np.r_[own, rel.row_cosines(q, a[hard])]),
                     "own_below_threshold": float(np.mean(own < rel.OFF_TOPIC_BELOW)),
                     "other_below_threshold": float(np.mean(rel.row_cosines(q, a[rnd]) < rel.OFF_TOPIC_BELOW)), "n": len(q)}

    for s in sorted(set(p.sources.tolist())):
        idx = np.flatnonzero((p.sources == s) & (p.y == 0) & (np.abs(p.heads).sum(axis=1) > 0))
        score(p.prompts[idx], p.heads[idx], f"{s} (compliant answers)")
    if halu is not None:
        score(*halu, "halueval-qa (right answers, short spans)")
    return out


def non_refusal_rates(path: Path, model_path: Path | None) -> dict[str, dict[str, float]]:
    """Share of answers flagged as refusals in a set with no refusals in it (grounding dev: HaluEval
    QA answers and BEGIN dialogue turns), per source: a false-positive rate on other kinds of text."""
    from detectors.base import Event
    from detectors.quality import RefusalDetector

    rows = [r for r in load_rows(path) if isinstance(r.get("response"), str)]
    det = RefusalDetector(model_path=str(model_path)) if model_path is not None else RefusalDetector()
    flags = [v.flagged for v in det.detect_batch([Event(prompt=r["prompt"], response=r["response"]) for r in rows])]
    out = {}
    for s in sorted({r["source"] for r in rows}):
        f = [fl for fl, r in zip(flags, rows) if r["source"] == s]
        out[s] = {"flagged": float(np.mean(f)), "n": len(f)}
    return out


def speed(rows: list[dict[str, Any]], n: int = 500, batch: int = 64, repeats: int = 2) -> dict[str, Any]:
    """ms per event (wall, CPU) of the quality and injection detectors on the same ``n`` events.

    The best of ``repeats`` runs per row: the machine is shared, and the minimum is the least
    disturbed measurement of the same work.
    """
    from detectors.base import Event
    from detectors.embeddings import make_embedder
    from detectors.injection import InjectionDetector
    from detectors.quality import QualityDetector, RefusalDetector

    pick = np.random.default_rng(SEED).permutation(len(rows))[:n]
    events = [Event(prompt=rows[i]["prompt"], response=rows[i].get("response"), event_id=str(i)) for i in pick]

    def timed(det: Any) -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        for i in range(0, len(events), batch):
            det.detect_batch(events[i: i + batch])
        return 1000 * (time.perf_counter() - w) / len(events), 1000 * (time.process_time() - c) / len(events)

    def cold(make: Callable[[Any], Any]) -> tuple[float, float]:
        runs = []
        for _ in range(repeats):
            emb = make_embedder()  # a fresh embedder: nothing cached
            det = make(emb)
            det.detect_batch([Event(prompt="warm up", response="Sure, here it is.")])  # models load off the clock
            emb.cache_clear()
            runs.append(timed(det))
        return min(runs, key=lambda r: r[1])  # by CPU time, the column compared

    def prompts_cached(make: Callable[[Any], Any]) -> tuple[float, float]:
        runs = []
        for _ in range(repeats):
            emb = make_embedder()
            det = make(emb)
            det.detect_batch([Event(prompt="warm up", response="Sure, here it is.")])
            emb.cache_clear()
            emb.encode([e.prompt for e in events])  # what the drift detector (every prompt) leaves in the cache
            runs.append(timed(det))
        return min(runs, key=lambda r: r[1])  # by CPU time, the column compared

    out: dict[str, Any] = {"n": len(events), "batch": batch, "repeats": repeats, "rows": {}}
    out["rows"]["injection (default)"] = cold(lambda e: InjectionDetector(embedder=e))
    out["rows"]["quality (default), cold cache"] = cold(lambda e: QualityDetector(embedder=e))
    out["rows"]["quality (default), requests already embedded"] = prompts_cached(lambda e: QualityDetector(embedder=e))
    out["rows"]["quality, head_chars=120, requests already embedded"] = prompts_cached(
        lambda e: QualityDetector(embedder=e, head_chars=120))
    out["rows"]["quality without embeddings (no relevance, no exemplar cue)"] = cold(
        lambda e: QualityDetector(embedder=e, checks=NO_EMBEDDING, refusal_similarity=False))
    out["rows"]["refusal only"] = cold(lambda e: RefusalDetector(embedder=e))
    out["load"] = tuple(round(x, 2) for x in os.getloadavg()) if hasattr(os, "getloadavg") else None
    return out


def _f(v: Any) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "—" if v is None or v != v else f"{v:.3f}"


def _table(rows: dict[str, dict[str, float]], first: str) -> list[str]:
    lines = [f"| {first} | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    return lines + [f"| {k} | " + " | ".join(_f(m[c]) for c in METRICS) + " |" for k, m in rows.items()]


def render(ctx: dict[str, Any]) -> str:
    """The markdown report (``bench/results/refusal.md``)."""
    p: Prepared = ctx["prepared"]
    lines = [
        "# Refusal detection and the quality detector: out-of-sample results and speed", "",
        f"Generated by `python -m detectors.training.refusal` (seed {SEED}) on {ctx['date']}; machine: {ctx['machine']}.",
        f"Data: `{ctx['data'].name}`, {len(p.y)} XSTest v2 completions, {int(p.y.sum())} refusals (full or partial), "
        f"sources {', '.join(f'`{s}` ({int((p.sources == s).sum())})' for s in sorted(set(p.sources)))}: one model each, so "
        "leave-one-source-out is leave-one-model-out.", "",
        "The held-out test uses models that are not in the dev set; the closest thing the dev set offers is to train on one",
        "model and score the other. Every fitted part (exemplar-cosine threshold at training precision >= "
        f"{SIM_PRECISION}, logistic regression C = {C}, sources and classes weighted equally) is chosen on the training",
        "model only. Threshold: 0.5 on the probability. The cue patterns and the exemplar sentences were written by hand",
        "with the whole dev set in view (no sentence is copied from it), so LOSO measures how the *fitted* parts transfer",
        "between models, not the wording of the patterns; the cue-dropout table below is the stress test for unseen wording.", "",
        "## Leave-one-model-out, every fold and every method", "",
    ]
    for name, per in ctx["loso"].items():
        mean_acc = np.mean([m["accuracy"] for m in per.values()])
        mean_f1 = np.mean([m["f1"] for m in per.values()])
        lines += [f"**{name}**: mean accuracy {mean_acc:.3f}, mean F1 {mean_f1:.3f}", ""]
        lines += _table({f"held out `{s}`": m for s, m in per.items()}, "fold") + [""]
    lines += [
        "Why grouped: a logistic regression with one weight per cue family, fitted on GPT-4 (whose refusals are almost all",
        "\"Sorry, but I can't assist with that\", i.e. an apology *and* an inability *and* a decline), learns that a refusal",
        "needs all three and misses Llama-2's \"I cannot provide ...\"; the MiniLM-embedding classifier learns GPT-4's one",
        "refusal sentence. Both rank well (AUROC) but their threshold does not transfer. Grouping every strong family into",
        "one feature (any of them in the opening) makes the fit transfer.", "",
        "## Choosing the exemplar cue's precision target (LOSO accuracy / F1 per held-out model)", "",
        "| training precision target | " + " | ".join(f"`{s}`" for s in sorted(set(p.sources.tolist()))) + " | mean accuracy |",
        "|---|" + "---:|" * (len(set(p.sources.tolist())) + 1),
        *[f"| {t}{' (shipped)' if t == SIM_PRECISION else ''} | " + " | ".join(f"{m['accuracy']:.3f} / {m['f1']:.3f}" for m in per.values())
          + f" | {np.mean([m['accuracy'] for m in per.values()]):.3f} |" for t, per in ctx["sweep"].items()], "",
        "## Cue dropout: one strong family removed everywhere (mean LOSO accuracy)", "",
        "| removed family | without exemplar cue | with exemplar cue (shipped) |", "|---|---:|---:|",
        *[f"| {fam} | {r['without']:.3f} | {r['with exemplar cue']:.3f} |" for fam, r in ctx["dropout"].items()], "",
        "The exemplar cue (cosine of the embedded opening to hand-written refusals) changes little when every pattern",
        "is present, and recovers much of the loss when a model refuses in words a pattern does not list.", "",
        "## Other views of the same method", "",
        *_table({"stratified 5-fold CV, both models (in-distribution)": ctx["kfold"],
                 "shipped weights on the whole dev set (in-sample, `llmwatch eval refusal`)": ctx["insample"],
                 **{f"  in-sample `{s}`": m for s, m in ctx["insample_by_source"].items()}}, "setting"), "",
        "## Answers that are not refusals, from other data (false-positive rate)", "",
        "The grounding dev set's answers (HaluEval QA answers, BEGIN dialogue turns) contain no refusals, so every flag is a",
        "false positive on kinds of text the refusal classifier never saw:", "",
        "| source | flagged as refusal | n |", "|---|---:|---:|",
        *[f"| {s} | {m['flagged']:.1%} | {m['n']} |" for s, m in ctx["elsewhere"].items()], "",
        f"Final model: exemplar-cosine threshold {ctx['final'].sim_threshold:.2f}; weights "
        + ", ".join(f"{n} {c:+.2f}" for n, c in zip(ctx["final"].feature_names, ctx["final"].coef))
        + f"; intercept {ctx['final'].intercept:+.2f}.", "",
    ]
    return "\n".join(lines + render_relevance_speed(ctx))


def render_relevance_speed(ctx: dict[str, Any]) -> list[str]:
    sp = ctx["speed"]
    inj_cpu = sp["rows"]["injection (default)"][1]
    lines = [
        "## Relevance check (request vs answer opening, MiniLM cosine)", "",
        f"Own answer against another question's answer; `random` = a random other question, `hard` = the most similar"
        f" other question. The off-topic flag fires below cosine {rel.OFF_TOPIC_BELOW} for answers of"
        f" {rel.MIN_WORDS}+ words.", "",
        "| set | AUROC random | AUROC hard | own below threshold | other below threshold | n |", "|---|---:|---:|---:|---:|---:|",
        *[f"| {k} | {v['random']:.3f} | {v['hard']:.3f} | {v['own_below_threshold']:.1%} | {v['other_below_threshold']:.1%} | {v['n']} |"
          for k, v in ctx["relevance"].items()], "",
        "HaluEval's right answers are short spans (\"Arthur's Magazine\"): their cosine to the question is low even when",
        "right, which is why answers under the word minimum are scored but never flagged.", "",
        f"## Speed: `detect_batch` on {sp['n']} dev events, batches of {sp['batch']}, same machine, same run", "",
        f"Best of {sp.get('repeats', 1)} runs per row; load average (1/5/15 min) at the end: {sp['load']} on a shared machine,"
        " so read the ratios rather than the absolute figures. Every run starts from a fresh embedder with an empty cache;"
        " \"requests already embedded\" first puts every prompt in that cache, as the drift detector (which embeds every"
        " prompt) does in the worker.", "",
        "| detector | wall ms/event | CPU ms/event | CPU vs injection |", "|---|---:|---:|---:|",
    ]
    for name, (wall, cpu) in sp["rows"].items():
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / inj_cpu:.2f}x |")
    lines += [
        "", "CPU ms counts every thread of the process (the embedder runs two). The quality detector embeds each"
        f" answer's first {rel.HEAD_CHARS} characters (`head_chars`) and the request (a cache hit when the drift or"
        " injection detector already embedded it); a profile puts ~83% of its time in that one `encode` call, the rest"
        " in regular expressions and arithmetic. The embedding serves the relevance check and the refusal exemplar cue."
        " `head_chars=120` embeds fewer tokens (the row above), but the exemplar cue's cosine threshold is fitted at"
        f" {rel.HEAD_CHARS} characters, so a shorter opening needs a retrain (in a development run it cost the GPT-4"
        " fold about one point of LOSO accuracy, and the relevance AUROC against the most similar other question fell"
        " to 0.92 / 0.95). The pattern-only setting (no relevance, no exemplar cue; its LOSO is the"
        " *grouped cues + logistic* rows above) costs a tenth.", "",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=EVAL_DIR / "refusal_dev.jsonl")
    ap.add_argument("--halueval", type=Path, default=EVAL_DIR / "grounding_dev.jsonl")
    ap.add_argument("--cache", type=Path, default=None, help="npz cache for the dev-set embeddings")
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--report", type=Path, default=ROOT / "bench" / "results" / "refusal.md")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--speed", type=int, default=500, help="events for the speed comparison (0: skip)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from detectors.embeddings import default_embedder
    from detectors.evaluation import evaluate_detection

    rows = load_rows(args.data)
    t0 = time.time()
    p = prepare(rows, default_embedder(), args.cache)
    print(f"prepared {len(rows)} rows in {time.time() - t0:.1f}s", flush=True)
    ctx: dict[str, Any] = {"prepared": p, "data": args.data, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}
    ctx["loso"] = {name: loso(p, m) for name, m in methods(p).items()}
    for name, per in ctx["loso"].items():
        print(name, {s: (round(m["accuracy"], 3), round(m["f1"], 3)) for s, m in per.items()}, flush=True)
    ctx["sweep"] = sweep(p)
    ctx["dropout"] = dropout(p)
    ctx["kfold"] = kfold(p)
    final = fit_model(p, np.arange(len(p.y)))
    ctx["final"] = RefusalModel(final.feature_names, final.coef, final.intercept, final.threshold, final.sim_threshold,
                                {**final.meta, "trained_on": args.data.name, "n": len(p.y),
                                 "loso": {s: {k: round(m[k], 4) for k in ("accuracy", "f1")}
                                          for s, m in ctx["loso"]["grouped cues + exemplar cue + logistic (shipped)"].items()}})
    if not args.no_save:
        args.out.write_text(ctx["final"].to_json() + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    from detectors.quality import RefusalDetector

    res = evaluate_detection(RefusalDetector(model_path=str(args.out)) if not args.no_save else RefusalDetector(), rows)
    ctx["insample"], ctx["insample_by_source"] = res, res["by_source"]
    halu = None
    if args.halueval.is_file():
        hr = [r for r in load_rows(args.halueval) if r["source"].startswith("halueval") and r["label"] == 0]
        emb = default_embedder()
        halu = (np.asarray(emb.encode([r["prompt"][: rel.PROMPT_CHARS] for r in hr]), np.float64),
                np.asarray(emb.encode([head(r["response"], rel.HEAD_CHARS) for r in hr]), np.float64))
    ctx["relevance"] = relevance_check(p, halu)
    ctx["elsewhere"] = non_refusal_rates(args.halueval, None if args.no_save else args.out) if args.halueval.is_file() else {}
    ctx["speed"] = speed(rows, args.speed) if args.speed else {"n": 0, "batch": 0, "load": None,
                                                                  "rows": {"injection (default)": (1.0, 1.0)}}
    report = render(ctx)
    args.report.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
