"""Fit and evaluate the grounding detector's logistic weights on the labelled dev set.

    python -m detectors.training.grounding [--data ../shared/eval/grounding_dev.jsonl] [--cache /tmp/grounding_emb.pkl]
                                  [--write bench/results/grounding.md] [--speed 200]

1. Computes each row's response-level features with ``GroundingDetector`` (embeddings cached
   in a pickle under /tmp so reruns are cheap).
2. Fits an L2 logistic regression (C=1.0, raw features, no scaling) with each source given
   equal total weight and the classes balanced within each source, so HaluEval's 1000 rows do
   not drown the dialogue sets. Reports 5-fold (stratified by source and label, seed 0) and
   leave-one-source-out AUROC: both out-of-sample.
3. Prints the weights to paste into ``detectors/grounding/support.py`` and, with ``--write``,
   the results table (using the weights *stored in code*, so the table is what ships).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time

from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from detectors.base import Event
from detectors.grounding import GroundingDetector, LengthBaseline
from detectors.grounding.support import FEATURES
from detectors.metrics import auroc, binary_metrics

SEED = 0
C = 1.0


class CachingEmbedder:
    """Wraps an embedder with a text -> vector cache persisted as a pickle."""

    def __init__(self, inner, path: Path) -> None:
        self.inner, self.path, self.dim = inner, path, inner.dim
        self.cache: dict[str, np.ndarray] = pickle.loads(path.read_bytes()) if path.exists() else {}

    def encode(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            vecs = self.inner.encode(missing)
            self.cache.update(zip(missing, vecs))
            self.path.write_bytes(pickle.dumps(self.cache))
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def load(path: str) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def to_event(r: dict) -> Event:
    return Event(prompt=r["prompt"] or "", response=r["response"], context=tuple(r["context"] or ()), event_id=r["id"])


def features(det: GroundingDetector, rows: list[dict]) -> np.ndarray:
    verdicts = []
    for i in range(0, len(rows), 256):
        verdicts += det.detect_batch([to_event(r) for r in rows[i : i + 256]])
    return np.array([[v.evidence["features"][k] for k in FEATURES] for v in verdicts]), verdicts


def sample_weights(sources: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = np.zeros(len(y))
    srcs = sorted(set(sources))
    for s in srcs:
        for lab in (0, 1):
            m = (sources == s) & (y == lab)
            if m.any():
                w[m] = 1.0 / (len(srcs) * 2 * m.sum())
    return w * len(y)


class NonNegLogistic:
    """Weighted L2 logistic regression with every feature weight constrained to be >= 0.

    Each feature is defined as "unsupportedness", so a negative weight would mean the model
    learnt a dev-set artefact (on HaluEval, low similarity of short right answers), not grounding.
    """

    def __init__(self, C: float = C) -> None:
        self.C = C

    def fit(self, X, y, sample_weight):
        from scipy.optimize import minimize

        n, d = X.shape
        w = sample_weight / sample_weight.sum()

        def loss(theta):
            z = X @ theta[:d] + theta[d]
            p = 1.0 / (1.0 + np.exp(-z))
            ll = np.sum(w * (np.logaddexp(0, z) - y * z))
            grad_z = w * (p - y)
            reg = 0.5 / (self.C * n) * np.sum(theta[:d] ** 2)
            g = np.concatenate([X.T @ grad_z + theta[:d] / (self.C * n), [grad_z.sum()]])
            return ll + reg, g

        res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=[(0, None)] * d + [(None, None)])
        self.coef_, self.intercept_ = res.x[None, :d], res.x[d:]
        return self

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-(X @ self.coef_[0] + self.intercept_[0])))
        return np.stack([1 - p, p], axis=1)


def fit(X, y, w):
    return NonNegLogistic().fit(X, y, w)


def cross_val(X, y, sources) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-sample scores from 5-fold CV and from leave-one-source-out."""
    from sklearn.model_selection import StratifiedKFold

    strata = np.array([f"{s}:{lab}" for s, lab in zip(sources, y)])
    kf = np.zeros(len(y))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=SEED).split(X, strata):
        kf[te] = fit(X[tr], y[tr], sample_weights(sources[tr], y[tr])).predict_proba(X[te])[:, 1]
    loso = np.zeros(len(y))
    for s in sorted(set(sources)):
        te = sources == s
        tr = ~te
        loso[te] = fit(X[tr], y[tr], sample_weights(sources[tr], y[tr])).predict_proba(X[te])[:, 1]
    return kf, loso


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "eval" / "grounding_dev.jsonl"))
    ap.add_argument("--cache", default="/tmp/grounding_emb.pkl")
    ap.add_argument("--write", default=None)
    ap.add_argument("--speed", type=int, default=0, help="events for an uncached events/s run (0: skip)")
    args = ap.parse_args()

    from detectors.embeddings import default_embedder

    rows = load(args.data)
    y = np.array([r["label"] for r in rows])
    sources = np.array([r["source"] for r in rows])
    lengths = np.array([len((r["response"] or "").split()) for r in rows])
    backend = os.environ.get("LLMWATCH_EMBEDDER", "default")
    emb = CachingEmbedder(default_embedder(), Path(args.cache.replace(".pkl", f"-{backend}.pkl")))
    det = GroundingDetector(embedder=emb)
    t0 = time.time()
    X, verdicts = features(det, rows)
    print(f"features for {len(rows)} rows in {time.time() - t0:.1f}s")
    for k, name in enumerate(FEATURES):
        per = {s: round(auroc(y[sources == s], X[sources == s, k]), 3) for s in sorted(set(sources))}
        print(f"  {name:12s} AUROC per source {per}  corr(len)={np.corrcoef(X[:, k], lengths)[0, 1]:+.2f}")

    model = fit(X, y, sample_weights(sources, y))
    print("\nfitted weights (paste into support.py):")
    print("  DEFAULT_WEIGHTS = {" + ", ".join(f'"{k}": {c:.3f}' for k, c in zip(FEATURES, model.coef_[0])) + "}")
    print(f"  DEFAULT_BIAS = {model.intercept_[0]:.3f}")
    kf, loso = cross_val(X, y, sources)

    shipped = np.array([v.score for v in verdicts])
    thr = det.threshold
    base = np.array([v.score for v in LengthBaseline().detect_batch([to_event(r) for r in rows])])
    table = []
    groups = [(s, sources == s) for s in sorted(set(sources))] + [("all", np.ones(len(y), bool))]
    for s, m in groups:
        met = binary_metrics(y[m], shipped[m], thr)
        met_cv = binary_metrics(y[m], kf[m], 0.5)
        table.append(
            {
                "source": s, "n": int(m.sum()), "pos": int(y[m].sum()),
                "auroc": met["auroc"], "p": met["precision"], "r": met["recall"], "f1": met["f1"],
                "cv_auroc": met_cv["auroc"], "cv_f1": met_cv["f1"],
                "loso_auroc": auroc(y[m], loso[m]) if s != "all" else float("nan"),
                "len_auroc": auroc(y[m], base[m]),
                "corr_len": float(np.corrcoef(shipped[m], lengths[m])[0, 1]),
                "corr_len_within": _within_class_corr(shipped[m], lengths[m], y[m]),
            }
        )
    hdr = ("| source | n (pos) | AUROC | P | R | F1 | 5-fold AUROC | 5-fold F1 | leave-source-out AUROC "
           "| length-baseline AUROC | corr(score, length) | within-class corr |")
    lines = [hdr, "|" + " --- |" * 12]
    for t in table:
        lines.append(
            f"| {t['source']} | {t['n']} ({t['pos']}) | {t['auroc']:.3f} | {t['p']:.3f} | {t['r']:.3f} | {t['f1']:.3f} "
            f"| {t['cv_auroc']:.3f} | {t['cv_f1']:.3f} | {t['loso_auroc']:.3f} | {t['len_auroc']:.3f} "
            f"| {t['corr_len']:+.2f} | {t['corr_len_within']:+.2f} |"
        )
    print("\n" + "\n".join(lines))

    speed = ""
    if args.speed:
        fresh = GroundingDetector()
        step = max(1, len(rows) // args.speed)
        sub = [to_event(r) for r in rows[::step][: args.speed]]  # all sources, in file order
        fresh.detect_batch(sub[:8])  # load the model
        t0 = time.time()
        for i in range(0, len(sub), 64):
            fresh.detect_batch(sub[i : i + 64])
        dt = time.time() - t0
        loadavg = os.getloadavg()[0]
        speed = (f"{len(sub) / dt:.1f} events/s ({len(sub)} events from every source, batches of 64, "
                 f"embedder {backend}, {os.cpu_count()} CPU cores, load average {loadavg:.1f} during the run)")
        print(speed)
    if args.write:
        Path(args.write).write_text(_report(lines, speed, model))


def _within_class_corr(s, n, y) -> float:
    """Mean over classes of corr(score, length): length leaning that class balance cannot explain."""
    cs = [np.corrcoef(s[y == c], n[y == c])[0, 1] for c in (0, 1) if (y == c).sum() > 2 and s[y == c].std() > 0]
    return float(np.mean(cs)) if cs else float("nan")


def _report(lines, speed, model) -> str:
    return "\n".join(["# Grounding detector: results", "", *lines, "", speed, ""])


if __name__ == "__main__":
    main()
