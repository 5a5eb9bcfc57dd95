"""Classification metrics for labelled detector evaluation (pure numpy).

>>> m = binary_metrics([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6], threshold=0.5)
>>> (m["precision"], m["recall"], m["auroc"])
(0.5, 0.5, 0.75)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve via the rank-sum statistic (ties count half); NaN if one class."""
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def binary_metrics(
    labels: Sequence[int], scores: Sequence[float], threshold: float, flags: Sequence[bool] | None = None
) -> dict[str, float]:
    """Precision, recall, F1, AUROC, accuracy, balanced accuracy and FPR at ``threshold``.

    ``flags`` overrides ``score >= threshold`` when a detector flags on more than its score.
    """
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    pred = np.asarray(flags, dtype=bool) if flags is not None else s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    tnr = tn / (tn + fp) if tn + fp else float("nan")
    fpr = fp / (fp + tn) if fp + tn else float("nan")
    if tp + fn and tn + fp:
        balanced = (recall + tnr) / 2
    else:
        balanced = recall if tp + fn else tnr
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auroc": auroc(y, s),
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
        "balanced_accuracy": balanced,
        "fpr": fpr,
        "threshold": float(threshold),
        "n": int(len(y)),
    }
