"""Layer 3 of the injection detector: logistic regression on embeddings, inference in numpy.

Features (in this order, recorded in the weights file as ``feature_names``): the 384
embedding dimensions, one 0/1 flag per heuristic family, the heuristic score and the maximum
cosine similarity to the attack corpus. ``bench/train_injection.py`` fits it and writes
``detectors/data/injection_classifier.npz``; run time needs numpy only.

Scores are *centred*: each layer's probability is mapped so that its operating threshold
(chosen on training folds) lands on 0.5, which makes ``threshold=0.5`` the trained operating
point and lets the detector take the max over layers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .heuristics import FAMILIES
from .similarity import DATA_DIR

MODEL_PATH = DATA_DIR / "injection_classifier.npz"


def feature_names(dim: int) -> list[str]:
    return [f"emb_{i}" for i in range(dim)] + [f"family_{f}" for f in FAMILIES] + ["heuristic_score", "max_similarity"]


def build_features(emb: np.ndarray, flags: np.ndarray, hscore: np.ndarray, maxsim: np.ndarray) -> np.ndarray:
    """Stack the feature matrix in :func:`feature_names` order."""
    return np.hstack(
        [np.asarray(emb, np.float32), np.asarray(flags, np.float32), np.asarray(hscore, np.float32)[:, None],
         np.asarray(maxsim, np.float32)[:, None]]
    )


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def unsupported_script(text: str, limit: float = 0.3) -> bool:
    """True when CJK characters make up more than ``limit`` of the non-space characters.

    all-MiniLM-L6-v2 was trained on English; its embeddings of Chinese/Japanese/Korean text
    are close to each other whatever they say, so the embedding layers abstain on such text
    and only the (multilingual) heuristics judge it.
    """
    chars = [c for c in text if not c.isspace()]
    return bool(chars) and len(_CJK.findall(text)) > limit * len(chars)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def centre(prob: np.ndarray | float, threshold: float) -> np.ndarray:
    """Map probabilities monotonically so that ``threshold`` becomes 0.5."""
    p = np.clip(np.asarray(prob, dtype=np.float64), 1e-6, 1 - 1e-6)
    z = np.log(p / (1 - p)) - _logit(threshold)
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class LogisticModel:
    """Weights of the trained classifier plus the similarity layer's calibration."""

    coef: np.ndarray  # (n_features,)
    intercept: float
    feature_names: tuple[str, ...]
    threshold: float  # probability threshold chosen on the training data (maps to 0.5)
    sim_threshold: float  # corpus cosine that maps to 0.5
    sim_scale: float  # logistic slope of the similarity calibration

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH) -> "LogisticModel":
        with np.load(path, allow_pickle=False) as z:
            model = cls(
                coef=np.asarray(z["coef"], dtype=np.float64).ravel(),
                intercept=float(z["intercept"]),
                feature_names=tuple(str(s) for s in z["feature_names"]),
                threshold=float(z["threshold"]),
                sim_threshold=float(z["sim_threshold"]),
                sim_scale=float(z["sim_scale"]),
            )
        if len(model.coef) != len(model.feature_names):
            raise ValueError(f"{path}: {len(model.coef)} coefficients for {len(model.feature_names)} features")
        return model

    def save(self, path: str | Path, **extra: np.ndarray) -> None:
        np.savez(
            path, coef=self.coef, intercept=np.float64(self.intercept), feature_names=np.array(self.feature_names),
            threshold=np.float64(self.threshold), sim_threshold=np.float64(self.sim_threshold),
            sim_scale=np.float64(self.sim_scale), **extra,
        )

    def proba(self, features: np.ndarray) -> np.ndarray:
        """Raw classifier probabilities for a feature matrix."""
        x = np.asarray(features, dtype=np.float64)
        if x.shape[1] != len(self.coef):
            raise ValueError(f"expected {len(self.coef)} features, got {x.shape[1]}")
        z = x @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def score(self, features: np.ndarray) -> np.ndarray:
        """Centred classifier scores (0.5 at the trained threshold)."""
        return centre(self.proba(features), self.threshold)

    def sim_score(self, maxsim: np.ndarray) -> np.ndarray:
        """Centred similarity scores: a logistic of the max cosine, 0.5 at ``sim_threshold``."""
        z = self.sim_scale * (np.asarray(maxsim, dtype=np.float64) - self.sim_threshold)
        return 1.0 / (1.0 + np.exp(-z))
