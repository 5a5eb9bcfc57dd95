"""Fit and evaluate the indirect-injection layer by leave-one-source-out (fixed seed).

    python -m detectors.training.indirect            # LOSO report + write the weights
    python -m detectors.training.indirect --no-save  # report only

Training rows: the indirect dev set (``../shared/eval/indirect_injection_dev.jsonl``: BIPIA
email, table and code-answer contexts) and the project's own rows
(:func:`detectors.training.indirect_data.project_rows`: attacks written for this project,
planted into passages from other sources) and, for training only, each dev attack moved inline
into a paragraph (:func:`~detectors.training.indirect_data.inline_variants`). Each candidate segment is a training example,
labelled by whether it overlaps planted text. For each dev source in turn, the classifier and
its threshold (best F1 with event-level FPR <= ``--max-fpr`` on the training rows) are fitted
without that source, which is then scored the way the detector scores a call. The project
rows are always in training, and get a fold of their own too. Writes
``detectors/data/indirect_classifier.npz`` and ``bench/results/indirect_injection.md``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from detectors.injection.classifier import LogisticModel
from detectors.injection.indirect import FEATURE_NAMES, INDIRECT_MODEL_PATH, candidates, features
from detectors.metrics import binary_metrics
from detectors.training.indirect_data import (
    HELDOUT_SOURCE, PROJECT_SOURCE, heldout_clean_rows, heldout_rows, training_rows,
)

ROOT = Path(__file__).resolve().parents[2]
SEED = 0
#: the languages besides English that the segment cues know (detectors.injection.passages)
OTHER_CUE_LANGUAGES = ("de", "fr", "es", "it", "pt", "nl", "pl", "ru", "tr")
C = 0.1  # chosen by leave-one-source-out (0.1 vs 1.0: better F1 on every dev fold)


def featurise(rows: list[dict[str, Any]], embedder: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature matrix, segment labels and owning row index for every candidate of every row."""
    per_row = [candidates(r["context"]) for r in rows]
    flat = [(ri, c) for ri, cands in enumerate(per_row) for c in cands]
    seg_emb = embedder.encode([c.seg.text for _, c in flat])
    prompt_emb = embedder.encode([r["prompt"] for r in rows])
    passages = [p for r in rows for p in r["context"]]
    passage_emb = embedder.encode(passages)
    offsets = np.cumsum([0] + [len(r["context"]) for r in rows])
    x = np.zeros((len(flat), len(FEATURE_NAMES)))
    for ri, cands in enumerate(per_row):
        ks = [k for k, (owner, _) in enumerate(flat) if owner == ri]
        if ks:
            x[ks] = features(cands, seg_emb[ks], prompt_emb[ri], passage_emb[offsets[ri]: offsets[ri + 1]])
    labels = np.array([_overlaps(rows[ri], c) for ri, c in flat], dtype=int)
    return x, labels, np.array([ri for ri, _ in flat], dtype=int)


def _overlaps(row: dict[str, Any], cand: Any) -> int:
    pi = cand.passage if cand.passage >= 0 else -1 - cand.passage
    return int(any(cand.seg.start < e and cand.seg.end > s for s, e in row["spans"][pi]))


def event_scores(p: np.ndarray, owner: np.ndarray, n_rows: int) -> np.ndarray:
    """A row's score is its worst candidate's (0 when nothing in it reads like an order)."""
    out = np.zeros(n_rows)
    np.maximum.at(out, owner, p)
    return out


def pick_threshold(y: np.ndarray, s: np.ndarray, max_fpr: float) -> float:
    """Best-F1 threshold among those with FPR <= ``max_fpr``."""
    best_t, best_f1 = 0.5, -1.0
    negatives = max(1, int((y == 0).sum()))
    for t in np.unique(np.round(s, 4)):
        pred = s >= t
        if (pred & (y == 0)).sum() / negatives > max_fpr:
            continue
        f1 = 2 * (pred & (y == 1)).sum() / max(1, pred.sum() + y.sum())
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t


def fit(x: np.ndarray, seg_y: np.ndarray, owner: np.ndarray, row_y: np.ndarray, rows_in: np.ndarray,
        max_fpr: float) -> LogisticModel:
    """Class-balanced logistic regression on the candidates of ``rows_in``, thresholded on those rows."""
    from sklearn.linear_model import LogisticRegression

    keep = np.isin(owner, rows_in)
    mu, sd = x[keep].mean(axis=0), x[keep].std(axis=0) + 1e-6
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=SEED)
    lr.fit((x[keep] - mu) / sd, seg_y[keep])
    model = LogisticModel(lr.coef_.ravel().astype(np.float64), float(lr.intercept_[0]), FEATURE_NAMES, 0.5, 1.0, 1.0,
                          mu.astype(np.float64), sd.astype(np.float64))
    scores = event_scores(model.proba(x), owner, len(row_y))
    threshold = pick_threshold(row_y[rows_in], scores[rows_in], max_fpr)
    return LogisticModel(model.coef, model.intercept, FEATURE_NAMES, threshold, 1.0, 1.0, model.mean, model.scale)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-fpr", type=float, default=0.03)
    ap.add_argument("--out", type=Path, default=INDIRECT_MODEL_PATH)
    ap.add_argument("--report", type=Path, default=ROOT / "bench" / "results" / "indirect_injection.md")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    from detectors.embeddings import default_embedder

    rows = training_rows(SEED)
    row_y = np.array([r["label"] for r in rows])
    sources = np.array([r["source"] for r in rows])
    scored = np.array([not r.get("augmented") for r in rows])  # inline variants only train
    t0 = time.time()
    x, seg_y, owner = featurise(rows, default_embedder())
    print(f"{len(rows)} rows, {len(x)} candidate segments ({seg_y.sum()} planted) in {time.time() - t0:.0f}s", flush=True)

    folds: dict[str, dict[str, Any]] = {}
    for held in sorted(set(sources)):
        train = np.flatnonzero(sources != held)
        if held != PROJECT_SOURCE:
            train = np.union1d(train, np.flatnonzero(sources == PROJECT_SOURCE))
        test = np.flatnonzero((sources == held) & scored)
        model = fit(x, seg_y, owner, row_y, train, args.max_fpr)
        s = event_scores(model.proba(x), owner, len(rows))
        folds[held] = {**binary_metrics(row_y[test], s[test], model.threshold), "threshold": model.threshold}
        print(f"held out {held}: F1 {folds[held]['f1']:.3f} FPR {folds[held]['fpr']:.3f}", flush=True)
    final = fit(x, seg_y, owner, row_y, np.arange(len(rows)), args.max_fpr)
    heldout = heldout_recall(final, heldout_rows(SEED + 1))
    clean = heldout_clean_rows()
    heldout["false alarms on clean non-English how-to passages (FPR)"] = float(_flagged(final, clean).mean())
    heldout["n false alarms on clean non-English how-to passages (FPR)"] = len(clean)
    print(f"{HELDOUT_SOURCE}: recall {heldout['all']:.3f}", flush=True)
    if not args.no_save:
        final.save(args.out, max_fpr=np.float64(args.max_fpr), seed=np.int64(SEED), n_train=np.int64(len(rows)))
        print(f"wrote {args.out}")
    args.report.write_text(render(folds, final, len(rows), len(x), args, heldout), encoding="utf-8")
    print(args.report.read_text(encoding="utf-8"))


def _flagged(model: LogisticModel, rows: list[dict[str, Any]]) -> np.ndarray:
    """Which rows the layer ``model`` flags, scored as in the worker."""
    from detectors.embeddings import default_embedder

    x, _, owner = featurise(rows, default_embedder())
    return event_scores(model.proba(x), owner, len(rows)) >= model.threshold


def heldout_recall(model: LogisticModel, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Recall of the final layer on attacks it never saw: overall, English, the languages the
    cues cover, and the rest (Swedish: no cues; Chinese, Japanese, Korean: not scored)."""
    hit = _flagged(model, rows)
    groups = {"all": lambda r: True, "English": lambda r: r["lang"] == "en",
              "the other languages the cues cover": lambda r: r["lang"] in OTHER_CUE_LANGUAGES,
              "Swedish, Chinese, Japanese, Korean (no cues or not scored)": lambda r: r["lang"] in ("sv", "zh", "ja", "ko")}
    out = {}
    for name, keep in groups.items():
        idx = [i for i, r in enumerate(rows) if keep(r)]
        out[name] = float(hit[idx].mean()) if idx else float("nan")
        out[f"n {name}"] = len(idx)
    return out


def render(folds: dict[str, dict[str, Any]], final: LogisticModel, n_rows: int, n_cands: int, args: Any,
           heldout: dict[str, float]) -> str:
    cols = ("precision", "recall", "f1", "auroc", "fpr", "n")
    head = "| held-out source | " + " | ".join(cols) + " | threshold |\n|" + "---|" * (len(cols) + 2)
    body = [f"| {s} | " + " | ".join(str(m[c]) if c == "n" else f"{m[c]:.3f}" for c in cols) + f" | {m['threshold']:.3f} |"
            for s, m in folds.items()]
    weights = ", ".join(f"{n} {w:+.2f}" for n, w in zip(final.feature_names, final.coef))
    return "\n".join([
        "# Indirect-injection layer: leave-one-source-out (segment classifier alone)",
        "",
        f"Generated by `python -m detectors.training.indirect` (seed {SEED}): {n_rows} rows, {n_cands} candidate segments.",
        "Each dev source is held out in turn; the classifier and its threshold (best F1 with event FPR <="
        f" {args.max_fpr:.0%} on the training rows) are fitted on the other sources plus the project's planted rows"
        f" (`{PROJECT_SOURCE}`: attacks written for this project in `detectors/data/indirect_attacks.jsonl`, planted"
        " into grounding-dev passages and the code answers of `detectors/data/indirect_clean_passages.jsonl`), and each"
        " dev attack once more moved inline into a paragraph of its clean twin (training only, never scored: BIPIA puts"
        " every attack on a line of its own, which the layer would otherwise learn as a shortcut).",
        "",
        head, *body, "",
        f"Final weights (standardised features): {weights}; threshold {final.threshold:.3f}.",
        "",
        f"Attacks never trained on (`{HELDOUT_SOURCE}`: `detectors/data/indirect_attacks_heldout.jsonl`, written after"
        " the cues, planted inline or on their own line into the prose passages) and clean non-English passages never trained"
        " on (`detectors/data/indirect_clean_heldout.jsonl`), final layer:",
        "",
        "| attacks | recall (clean: FPR) | n |",
        "|---|---|---|",
        *(f"| {k} | {v:.3f} | {heldout['n ' + k]} |" for k, v in heldout.items() if not k.startswith("n ")),
        "",
        "The whole detector on the dev files, as the worker runs it, is in `bench/results/injection_ablation.md`.",
        "",
    ])


if __name__ == "__main__":
    main()
