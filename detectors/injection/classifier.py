"""Layer 3 of the injection detector: logistic regression on embeddings, inference in numpy.

Features (in this order, recorded in the weights file as ``feature_names``): the 384
embedding dimensions, one 0/1 flag per heuristic family, the heuristic score, the maximum
cosine similarity to the attack corpus and a few surface statistics of the text
(:data:`STAT_NAMES`: upper-case ratio, shouted words, quotes, second-person and imperative
density, control verbs, non-ASCII and German function-word ratios, rule count, mean top-5
corpus similarity). Features are standardised with the training mean/scale stored
alongside the weights. ``detectors/training/injection.py`` fits it and writes
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


STAT_NAMES = (
    "upper_ratio", "caps_words", "quotes", "second_person", "imperative_density", "control_verbs", "non_ascii",
    "german_words", "n_rules", "mean_top5_similarity",
)

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_CLAUSE = re.compile(r"(?:[.!?;:\n]|\\n)+")
_QUOTES = re.compile(r"[\"“”„«»‘’`]|(?<!\w)'|'(?!\w)")
_SECOND_PERSON = frozenset(
    "you your you're youre yours yourself ur du dich dir dein deine deinen deinem deiner tu te toi ton ta tes vous "
    "votre vos usted tú tienes eres".split()
)
# verbs that open an instruction (English, German, Spanish, French, Italian)
_IMPERATIVES = frozenset(
    "ignore forget disregard say write print output tell answer act pretend imagine repeat show stop generate translate "
    "respond reply give list explain describe create make provide summarize summarise start begin include use follow "
    "compose draft return reveal display type spell be become play remember focus concentrate drop abandon leave "
    "ignoriere ignorieren vergiss vergessen schreibe schreib sag sage gib zeige zeig antworte formuliere verfasse stell "
    "beantworte tu spiele sei werde erkläre nenne olvida olvide ignora di dime escribe actúa finge imagina responde "
    "oubliez oublie ignorez ignore dites dis écris écrivez agis fais répondez dimentica ignora scrivi rispondi".split()
)
_CONTROL = frozenset(
    "ignore forget disregard stop pretend act repeat print output say abandon drop override bypass "
    "ignoriere vergiss sag sage olvida ignora di oubliez ignorez dites dimentica".split()
)
_GERMAN = frozenset("der die das und ist nicht ich du sie wie was ein eine zu mit für auf ich wir bitte".split())


def text_stats(text: str) -> list[float]:
    """Surface statistics of a text (the classifier's non-embedding features besides flags/similarity).

    Everything except ``mean_top5_similarity`` (filled in by :func:`build_features`' caller) and
    ``n_rules`` (from the heuristic layer) is computed here; both are left at 0.
    """
    text = text[:20000]
    words = _WORD.findall(text)
    lower = [w.lower() for w in words]
    nw = max(1, len(words))
    letters = [c for c in text if c.isalpha()]
    nl = max(1, len(letters))
    clauses = [c.strip() for c in _CLAUSE.split(text) if c.strip()]
    first = [(_WORD.findall(c) or [""])[0].lower() for c in clauses]
    nc = max(1, len(clauses))
    return [
        sum(c.isupper() for c in letters) / nl,
        float(np.log1p(sum(1 for w in words if len(w) >= 3 and w.isupper()))),
        float(np.log1p(len(_QUOTES.findall(text)))),
        sum(w in _SECOND_PERSON for w in lower) / nw,
        sum(f in _IMPERATIVES for f in first) / nc,
        float(np.log1p(sum(w in _CONTROL for w in lower))),
        sum(not c.isascii() for c in letters) / nl,
        sum(w in _GERMAN for w in lower) / nw,
        0.0,
        0.0,
    ]


def feature_names(dim: int) -> list[str]:
    return (
        [f"emb_{i}" for i in range(dim)] + [f"family_{f}" for f in FAMILIES] + ["heuristic_score", "max_similarity"]
        + [f"stat_{n}" for n in STAT_NAMES]
    )


def build_features(
    emb: np.ndarray, flags: np.ndarray, hscore: np.ndarray, maxsim: np.ndarray,
    stats: np.ndarray | None = None, n_rules: np.ndarray | None = None, top5sim: np.ndarray | None = None,
) -> np.ndarray:
    """Stack the feature matrix in :func:`feature_names` order.

    ``stats`` is one :func:`text_stats` row per text; ``n_rules`` (matched heuristic rules) and
    ``top5sim`` (mean of the five highest corpus similarities) overwrite its last two columns.
    """
    n = len(emb)
    st = np.zeros((n, len(STAT_NAMES)), np.float32) if stats is None else np.array(stats, np.float32).reshape(n, -1)
    if n_rules is not None:
        st[:, STAT_NAMES.index("n_rules")] = np.log1p(np.asarray(n_rules, np.float32))
    if top5sim is not None:
        st[:, STAT_NAMES.index("mean_top5_similarity")] = np.asarray(top5sim, np.float32)
    return np.hstack(
        [np.asarray(emb, np.float32), np.asarray(flags, np.float32).reshape(n, -1),
         np.asarray(hscore, np.float32)[:, None], np.asarray(maxsim, np.float32)[:, None], st]
    )


def top_k_mean(sims: np.ndarray, k: int = 5) -> np.ndarray:
    """Mean of the ``k`` largest similarities per row."""
    k = min(k, sims.shape[1])
    return np.sort(sims, axis=1)[:, -k:].mean(axis=1)


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
    mean: np.ndarray | None = None  # feature standardisation (x - mean) / scale, fitted on training rows
    scale: np.ndarray | None = None

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
                mean=np.asarray(z["mean"], dtype=np.float64).ravel() if "mean" in z.files else None,
                scale=np.asarray(z["scale"], dtype=np.float64).ravel() if "scale" in z.files else None,
            )
        if len(model.coef) != len(model.feature_names):
            raise ValueError(f"{path}: {len(model.coef)} coefficients for {len(model.feature_names)} features")
        return model

    def save(self, path: str | Path, **extra: np.ndarray) -> None:
        np.savez(
            path, coef=self.coef, intercept=np.float64(self.intercept), feature_names=np.array(self.feature_names),
            threshold=np.float64(self.threshold), sim_threshold=np.float64(self.sim_threshold),
            sim_scale=np.float64(self.sim_scale),
            **({"mean": self.mean, "scale": self.scale} if self.mean is not None else {}), **extra,
        )

    def proba(self, features: np.ndarray) -> np.ndarray:
        """Raw classifier probabilities for a feature matrix."""
        x = np.asarray(features, dtype=np.float64)
        if x.shape[1] != len(self.coef):
            raise ValueError(f"expected {len(self.coef)} features, got {x.shape[1]}")
        if self.mean is not None and self.scale is not None:
            x = (x - self.mean) / self.scale
        z = x @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def score(self, features: np.ndarray) -> np.ndarray:
        """Centred classifier scores (0.5 at the trained threshold)."""
        return centre(self.proba(features), self.threshold)

    def sim_score(self, maxsim: np.ndarray) -> np.ndarray:
        """Centred similarity scores: a logistic of the max cosine, 0.5 at ``sim_threshold``."""
        z = self.sim_scale * (np.asarray(maxsim, dtype=np.float64) - self.sim_threshold)
        return 1.0 / (1.0 + np.exp(-z))
