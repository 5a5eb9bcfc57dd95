"""Train and evaluate the injection detector's classifier layer (reproducible, fixed seed).

    python -m detectors.training.injection                      # CV report + write the weights
    python -m detectors.training.injection --cache /tmp/e.npy   # reuse dev-set embeddings between runs

Steps:
1. Embed the labelled dev set (``../shared/eval/injection_dev.jsonl`` or ``--data``) and
   the curated attack corpus with :func:`detectors.embeddings.default_embedder`.
2. Out-of-sample evaluation of the WHOLE pipeline: stratified 5-fold CV (strata = source x
   label). On each training fold: fit the logistic regression (C picked by inner 5-fold CV
   log-loss), choose the classifier threshold on inner out-of-fold probabilities (max F1 with
   FPR <= ``--max-fpr``) and the similarity threshold as a benign-quantile of training
   similarities. The held-out fold is scored with the same combination the detector uses.
3. Leave-one-source-out: train on all other sources, score the held-out source; then again with
   honest folds (rules, corpus items and synthetic rows derived from the held-out source dropped
   from its fold, :mod:`detectors.training.injection_folds`). The project-written and held-out
   sets are scored by the final model. (Background benign prompts from the drift dev streams are
   extra negatives in every fit; the synthetic rows of :mod:`detectors.training.injection_synth`
   are extra rows in every fit, at ``SYNTH_WEIGHT`` each.)
4. Fit on everything and save ``detectors/data/injection_classifier.npz``; write
   ``bench/results/injection.md``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from detectors.injection.classifier import (
    MODEL_PATH, STAT_NAMES, LogisticModel, build_features, feature_names, text_stats, top_k_mean, unsupported_script,
)
from detectors.injection.heuristics import FAMILIES, scan
from detectors.injection.passages import strip_code
from detectors.training.injection_synth import synthetic_rows
from detectors.training.injection_folds import derived_corpus, derived_rules, rule_sources, without_rules
from detectors.injection.similarity import CORPUS_PATH, load_corpus
from detectors.metrics import binary_metrics

SEED = 0
C_GRID = (0.01, 0.03, 0.1, 0.3)  # on standardised features
SIM_BENIGN_QUANTILE = 1.0  # the similarity layer alone never fires on a training benign row (+ margin)
SIM_MARGIN = 0.01
SIM_FLOOR = 0.75  # never let the similarity layer fire alone below this cosine
SIM_SCALE = 25.0
# Background benign prompts (Alpaca-style instructions + GSM8K questions from the drift dev streams):
# extra negatives for the logistic fit only (never for thresholds or metrics), at this total weight
# relative to the labelled benign rows.
BACKGROUND_GLOB = str(Path(__file__).resolve().parents[3] / "shared" / "eval" / "drift_dev_*.jsonl")
BACKGROUND_WEIGHT = 0.3
# Project-written attacks and benign prompts in seven languages (detectors/training/injection_synth.py):
# extra rows in every logistic fit (never for thresholds or metrics), each weighing this much
# (a labelled row weighs about 1). Chosen by the honest leave-one-source-out folds among 0.1 / 0.25 /
# 0.5 / 1.0: the best mean F1 over the two held-out sources that hold both classes (deepset 0.667,
# InjecGuard 0.832 at 0.1; 0.685 / 0.800 at 0.25; 0.679 / 0.792 at 0.5; 0.688 / 0.780 at 1.0).
SYNTH_WEIGHT = 0.1
SYNTH_PER_LANGUAGE = 250


def load_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def embed(texts: list[str], cache: Path | None) -> np.ndarray:
    if cache is not None and cache.exists():
        x = np.load(cache)
        if len(x) == len(texts):
            return x
    from detectors.embeddings import default_embedder

    x = default_embedder().encode(texts)
    if cache is not None:
        np.save(cache, x)
    return x


def featurise(texts: list[str], emb: np.ndarray, cemb: np.ndarray,
              drop: frozenset[str] = frozenset()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Feature matrix (classifier order) plus the per-layer inputs the detector combines.

    ``emb`` embeds each text as the detector does (:func:`strip_code` first); ``drop`` names
    rules to leave out (those derived from a held-out source).
    """
    sims = emb @ cemb.T
    heur = [without_rules(scan(t), drop) for t in texts]
    parts = {
        "maxsim": sims.max(axis=1),
        "nearest": sims.argmax(axis=1),
        "hscore": np.array([h.score for h in heur]),
        "abstain": np.array([unsupported_script(t) for t in texts], dtype=bool),
    }
    x = build_features(
        emb, np.array([h.family_flags() for h in heur]), parts["hscore"], parts["maxsim"],
        np.array([text_stats(strip_code(t)) for t in texts]), np.array([len(h.rules) for h in heur]), top_k_mean(sims),
    )
    return x, parts


#: Synthetic rows as a fit takes them: features, labels, the weight of each row.
SynthRows = tuple[np.ndarray, np.ndarray, float]


class Synthetic:
    """The project's synthetic rows (:mod:`detectors.training.injection_synth`), embedded once."""

    def __init__(self, texts: list[str], y: np.ndarray, emb: np.ndarray, weight: float = SYNTH_WEIGHT) -> None:
        self.texts, self.y, self.emb, self.weight = texts, y, emb, weight

    @classmethod
    def load(cls, cache: Path | None, framed: bool = False, weight: float = SYNTH_WEIGHT) -> "Synthetic":
        rows = synthetic_rows(SEED, SYNTH_PER_LANGUAGE, framed=framed)
        texts = [r["prompt"] for r in rows]
        # the cache is named by the rows' content: a changed generator never reads stale embeddings
        digest = hashlib.blake2b("\x00".join(texts).encode(), digest_size=6).hexdigest()
        cached = None if cache is None else cache.with_name(f"{cache.stem}.synthetic-{digest}.npy")
        y = np.array([r["label"] for r in rows], dtype=int)
        return cls(texts, y, embed([strip_code(t) for t in texts], cached), weight)

    def counts(self) -> tuple[int, int]:
        """(attacks, benign)."""
        return int(self.y.sum()), int(len(self.y) - self.y.sum())

    def features(self, corpus_emb: np.ndarray, drop: frozenset[str] = frozenset(),
                 keep: np.ndarray | None = None) -> SynthRows:
        keep = np.ones(len(self.texts), bool) if keep is None else keep
        kept = [t for t, k in zip(self.texts, keep) if k]
        return featurise(kept, self.emb[keep], corpus_emb, drop)[0], self.y[keep], self.weight

    def fold_features(self, corpus_emb: np.ndarray, drop: frozenset[str], held_texts: list[str],
                      held_emb: np.ndarray) -> tuple[SynthRows, int]:
        """Features for an honest fold: rows sharing a five-word sequence with, or paraphrasing, a
        held-out row are left out, as corpus items are; also returns how many left."""
        keep = ~derived_corpus(self.texts, self.emb, held_texts, held_emb)
        return self.features(corpus_emb, drop, keep), int((~keep).sum())


def load_background(pattern: str) -> list[str]:
    import glob

    texts: list[str] = []
    for f in sorted(glob.glob(pattern)):
        texts += [r.get("prompt") or "" for r in load_rows(Path(f))]
    return list(dict.fromkeys(t for t in texts if t.strip()))


def _strata(rows: list[dict]) -> np.ndarray:
    keys = sorted({(r["source"], r["label"]) for r in rows})
    return np.array([keys.index((r["source"], r["label"])) for r in rows])


def _folds(strata: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Stratified k-fold test indices (numpy only, deterministic)."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        rng.shuffle(idx)
        for i, j in enumerate(idx):
            folds[(i + offset) % k].append(int(j))
        offset += len(idx)
    return [np.array(sorted(f)) for f in folds]


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float, mean: np.ndarray, scale: np.ndarray, bg: np.ndarray | None,
            synth: SynthRows | None = None):
    """Class-balanced logistic regression on standardised features (+ weighted background negatives
    and synthetic rows)."""
    from sklearn.linear_model import LogisticRegression

    n1, n0 = max(1, int(y.sum())), max(1, int((y == 0).sum()))
    w = np.where(y == 1, len(y) / (2 * n1), len(y) / (2 * n0))
    xs = (x - mean) / scale
    if bg is not None and len(bg) and BACKGROUND_WEIGHT > 0:
        # background rows share BACKGROUND_WEIGHT x the total weight of the labelled benign rows
        wb = np.full(len(bg), BACKGROUND_WEIGHT * (len(y) / 2) / len(bg))
        xs, y, w = np.vstack([xs, (bg - mean) / scale]), np.r_[y, np.zeros(len(bg), int)], np.r_[w, wb]
    if synth is not None and len(synth[1]) and synth[2] > 0:
        sx, sy, sw = synth
        xs, y, w = np.vstack([xs, (sx - mean) / scale]), np.r_[y, sy], np.r_[w, np.full(len(sy), sw)]
    return LogisticRegression(C=c, max_iter=5000, random_state=SEED).fit(xs, y, sample_weight=w)


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0).astype(np.float64), x.std(axis=0).astype(np.float64) + 1e-6


def _pick_threshold(y: np.ndarray, p: np.ndarray, max_fpr: float) -> float:
    """Threshold with the best F1 among those with FPR <= max_fpr (on out-of-fold probabilities)."""
    best_t, best_f1 = 0.5, -1.0
    for t in np.unique(np.round(p, 4)):
        pred = p >= t
        fp = np.sum(pred & (y == 0))
        fpr = fp / max(1, np.sum(y == 0))
        if fpr > max_fpr:
            continue
        tp = np.sum(pred & (y == 1))
        prec = tp / max(1, pred.sum())
        rec = tp / max(1, y.sum())
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        if f1 > best_f1:
            best_f1, best_t = f1, float(t)
    return best_t


def fit_pipeline(x: np.ndarray, y: np.ndarray, strata: np.ndarray, maxsim: np.ndarray, max_fpr: float,
                 bg: np.ndarray | None = None, synth: SynthRows | None = None) -> LogisticModel:
    """Everything the detector learns from labelled rows, using only these rows (+ background
    negatives and synthetic rows, which weigh in the fit alone)."""
    inner = _folds(strata, 5, SEED + 1)
    best_c, best_loss, best_oof = C_GRID[0], np.inf, None
    for c in C_GRID:
        oof = np.zeros(len(y))
        for te in inner:
            tr = np.setdiff1d(np.arange(len(y)), te)
            mu, sd = _standardiser(x[tr])
            oof[te] = _fit_lr(x[tr], y[tr], c, mu, sd, bg, synth).predict_proba((x[te] - mu) / sd)[:, 1]
        p = np.clip(oof, 1e-6, 1 - 1e-6)
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        if loss < best_loss:
            best_c, best_loss, best_oof = c, loss, oof
    threshold = _pick_threshold(y, best_oof, max_fpr)
    mu, sd = _standardiser(x)
    lr = _fit_lr(x, y, best_c, mu, sd, bg, synth)
    sim_threshold = float(max(np.quantile(maxsim[y == 0], SIM_BENIGN_QUANTILE) + SIM_MARGIN, SIM_FLOOR))
    model = LogisticModel(
        coef=lr.coef_.ravel().astype(np.float64), intercept=float(lr.intercept_[0]),
        feature_names=tuple(feature_names(x.shape[1] - len(FAMILIES) - 2 - len(STAT_NAMES))), threshold=threshold,
        sim_threshold=sim_threshold, sim_scale=SIM_SCALE, mean=mu, scale=sd,
    )
    object.__setattr__(model, "C", best_c)
    return model


def combine(model: LogisticModel, x: np.ndarray, hscore: np.ndarray, maxsim: np.ndarray, abstain: np.ndarray):
    """Final score = max(heuristic, centred classifier, centred similarity), and the winning layer.

    Rows in a script the embedder cannot read (``abstain``) get heuristics only, as in the detector.
    """
    keep = ~abstain
    layers = np.vstack([hscore, model.score(x) * keep, model.sim_score(maxsim) * keep])
    return layers.max(axis=0), layers.argmax(axis=0)


def _metrics(y, s, idx=None) -> dict:
    if idx is not None:
        y, s = y[idx], s[idx]
    return binary_metrics(y, s, 0.5)


def _fmt(v: float) -> str:
    return "—" if v != v else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "eval" / "injection_dev.jsonl")
    ap.add_argument("--cache", type=Path, default=None, help="npy cache for the dev-set embeddings")
    ap.add_argument("--max-fpr", type=float, default=0.03, help="FPR budget when choosing the classifier threshold")
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--report", type=Path, default=ROOT / "bench" / "results" / "injection.md")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--background", default=BACKGROUND_GLOB, help="glob of JSONL files whose prompts are extra benign rows")
    ap.add_argument("--no-background", action="store_true", help="fit on the labelled rows only")
    ap.add_argument("--no-synthetic", action="store_true", help="leave out the project's synthetic rows (as 1.2.0 was fit)")
    ap.add_argument("--framed-synthetic", action="store_true",
                    help="the not-shipped experiment: synthetic rows with framed requests (use with --no-save)")
    ap.add_argument("--synth-weight", type=float, default=SYNTH_WEIGHT, help="weight of each synthetic row in the fits")
    args = ap.parse_args()

    rows = load_rows(args.data)
    y = np.array([int(r["label"]) for r in rows])
    sources = np.array([r["source"] for r in rows])
    strata = _strata(rows)
    t0 = time.time()
    emb = embed([strip_code(r["prompt"]) for r in rows], args.cache)
    corpus = load_corpus(CORPUS_PATH)
    from detectors.embeddings import default_embedder

    cemb = default_embedder().encode([c["text"] for c in corpus])
    print(f"embedded {len(rows)} rows + {len(corpus)} corpus attacks in {time.time() - t0:.1f}s", flush=True)
    texts = [r["prompt"] for r in rows]
    x, parts = featurise(texts, emb, cemb)
    maxsim, nearest, hscore, abst = parts["maxsim"], parts["nearest"], parts["hscore"], parts["abstain"]
    bg_texts = [] if args.no_background else load_background(args.background)
    bg = None
    if bg_texts:
        bg_cache = None if args.cache is None else args.cache.with_name(args.cache.stem + ".background.npy")
        bg_emb = embed([strip_code(t) for t in bg_texts], bg_cache)
        bgx, bgp = featurise(bg_texts, bg_emb, cemb)
        bg = bgx[~bgp["abstain"]]
    args.n_background = 0 if bg is None else len(bg)
    print(f"{len(bg_texts)} background benign prompts (weight {BACKGROUND_WEIGHT if bg_texts else 0})", flush=True)
    print(f"{abst.sum()} rows in an unsupported script (embedding layers abstain)")
    synthetic = None if args.no_synthetic else Synthetic.load(args.cache, args.framed_synthetic, args.synth_weight)
    synth = synthetic.features(cemb) if synthetic else None
    args.n_synthetic = synthetic.counts() if synthetic else (0, 0)
    print(f"{sum(args.n_synthetic)} synthetic rows (weight {args.synth_weight if synthetic else 0})", flush=True)

    # -------- stratified 5-fold CV over the whole pipeline
    oof = np.zeros(len(y))
    oof_layer = np.zeros(len(y), dtype=int)
    oof_cls = np.zeros(len(y))
    thresholds, cs, sim_ts = [], [], []
    for k, te in enumerate(_folds(strata, 5, SEED)):
        tr = np.setdiff1d(np.arange(len(y)), te)
        tr = tr[~abst[tr]]
        m = fit_pipeline(x[tr], y[tr], strata[tr], maxsim[tr], args.max_fpr, bg, synth)
        oof[te], oof_layer[te] = combine(m, x[te], hscore[te], maxsim[te], abst[te])
        oof_cls[te] = m.score(x[te]) * ~abst[te]
        thresholds.append(m.threshold)
        cs.append(m.C)
        sim_ts.append(m.sim_threshold)
        print(f"fold {k}: C={m.C} p-threshold={m.threshold:.3f} sim-threshold={m.sim_threshold:.3f}", flush=True)
    overall = _metrics(y, oof)
    per_source = {s: _metrics(y, oof, np.flatnonzero(sources == s)) for s in sorted(set(sources))}
    layer_only = {
        "heuristics": binary_metrics(y, hscore, 0.5),
        "similarity (fold thresholds)": None,
        "classifier": binary_metrics(y, oof_cls, 0.5),
    }
    layer_only.pop("similarity (fold thresholds)")
    fired_by = defaultdict(int)
    for lay, s in zip(oof_layer, oof):
        if s >= 0.5:
            fired_by[("heuristic", "classifier", "similarity")[lay]] += 1

    # -------- leave-one-source-out, before (corpus and rules fixed) and after (honest folds)
    fired_on = rule_sources([scan(t) for t in texts], list(sources))
    project = project_attack_texts()
    project_fired = {n.split(":", 1)[-1] for t in project for n in scan(t).rules}
    loso, honest, moved = {}, {}, {}
    for s in sorted(set(sources)):
        te = np.flatnonzero(sources == s)
        tr = np.flatnonzero((sources != s) & ~abst)
        m = fit_pipeline(x[tr], y[tr], strata[tr], maxsim[tr], args.max_fpr, bg, synth)
        sc, _ = combine(m, x[te], hscore[te], maxsim[te], abst[te])
        loso[s] = binary_metrics(y[te], sc, 0.5)
        keep = ~derived_corpus([c["text"] for c in corpus], cemb, [texts[i] for i in te], emb[te])
        drop = derived_rules(s, fired_on, project_fired)
        xf, pf = featurise(texts, emb, cemb[keep], drop)
        bgf = None
        if bg is not None:
            bgx_f, bgp_f = featurise(bg_texts, bg_emb, cemb[keep], drop)
            bgf = bgx_f[~bgp_f["abstain"]]
        synth_f, synth_out = None, 0
        if synthetic:
            synth_f, synth_out = synthetic.fold_features(cemb[keep], drop, [texts[i] for i in te], emb[te])
        moved[s] = (int((~keep).sum()), synth_out, sorted(drop))
        m = fit_pipeline(xf[tr], y[tr], strata[tr], pf["maxsim"][tr], args.max_fpr, bgf, synth_f)
        sc, _ = combine(m, xf[te], pf["hscore"][te], pf["maxsim"][te], abst[te])
        honest[s] = binary_metrics(y[te], sc, 0.5)
        print(f"LOSO {s}: before {loso[s]['f1']:.3f}/{loso[s]['fpr']:.3f} honest {honest[s]['f1']:.3f}/{honest[s]['fpr']:.3f}"
              f" ({moved[s][0]} corpus items, {len(moved[s][2])} rules moved to the fold)", flush=True)

    # -------- final fit on everything
    final = fit_pipeline(x[~abst], y[~abst], strata[~abst], maxsim[~abst], args.max_fpr, bg, synth)
    if not args.no_save:
        final.save(args.out, C=np.float64(final.C), max_fpr=np.float64(args.max_fpr), seed=np.int64(SEED),
                   n_train=np.int64(len(y)), corpus_size=np.int64(len(corpus)))
        print(f"wrote {args.out}")

    # -------- throughput of the detector itself
    from detectors.base import Event
    from detectors.injection import InjectionDetector

    bench_rows = rows[::4]
    det = InjectionDetector(model_path=str(args.out)) if not args.no_save else InjectionDetector()
    det.detect_batch([Event(prompt="warm up")])
    ev = [Event(prompt=r["prompt"]) for r in bench_rows]
    t = time.time()
    det.detect_batch(ev)
    eps_batch = len(ev) / (time.time() - t)
    # distinct rows per measurement, so an embedder-side cache cannot inflate a later figure
    ev_single = [Event(prompt=r["prompt"]) for r in rows[1::4][:100]]
    t = time.time()
    for e in ev_single:
        det.detect(e)
    eps_single = len(ev_single) / (time.time() - t)
    det_nc = InjectionDetector(cascade=False) if args.no_save else InjectionDetector(model_path=str(args.out), cascade=False)
    ev_nc = [Event(prompt=r["prompt"]) for r in rows[2::4]]
    t = time.time()
    det_nc.detect_batch(ev_nc)
    eps_nocascade = len(ev_nc) / (time.time() - t)
    t = time.time()
    for r in rows:
        scan(r["prompt"])
    eps_heur = len(rows) / (time.time() - t)

    args.honest, args.moved = honest, moved
    project_rows = load_rows(PROJECT_SET)
    args.project = evaluate_project(det, project_rows)
    args.heldout = evaluate_project(det, load_rows(HELDOUT_SET), key="lang")
    args.heldout_roleplay = evaluate_project(det, load_rows(HELDOUT_ROLEPLAY_SET), key="lang")
    report = render(overall, per_source, loso, layer_only, fired_by, thresholds, cs, sim_ts, final, args, len(corpus),
                    eps_batch, eps_single, eps_nocascade, eps_heur, y, sources, oof, rows, nearest, corpus, maxsim)
    args.report.write_text(report, encoding="utf-8")
    print(report)


PROJECT_SET = ROOT / "detectors" / "data" / "injection_project_set.jsonl"
#: written after the synthetic rows (injection_synth.py) and never used to fit or choose anything
HELDOUT_SET = ROOT / "detectors" / "data" / "injection_heldout_set.jsonl"
#: role-play and framed jailbreaks, each with a benign twin in the same framing; never fitted on
HELDOUT_ROLEPLAY_SET = ROOT / "detectors" / "data" / "injection_heldout_roleplay.jsonl"


def project_attack_texts() -> list[str]:
    """The project's own attacks (direct and indirect): a rule that fires on them is not a dev-row copy."""
    direct = [r["prompt"] for r in load_rows(PROJECT_SET) if r["label"] == 1]
    return direct + [r["text"] for r in load_rows(ROOT / "detectors" / "data" / "indirect_attacks.jsonl")]


def evaluate_project(det, rows: list[dict], key: str = "family") -> dict:
    """The shipped detector on a project-written set: overall and per ``key`` (never used to fit)."""
    from detectors.base import Event

    verdicts = det.detect_batch([Event(prompt=r["prompt"]) for r in rows])
    y = np.array([r["label"] for r in rows])
    s = np.array([v.score for v in verdicts])
    per: dict[str, list[int]] = {}
    for r, v in zip(rows, verdicts):
        counts = per.setdefault(f"{r[key]} {'attack' if r['label'] else 'benign'}", [0, 0])
        counts[0] += int(v.flagged)
        counts[1] += 1
    return {"all": binary_metrics(y, s, 0.5), "families": per}


def project_section(title: str, path: Path, name: str, result: dict, per: str, head: str, row, about: str) -> list[str]:
    """The report's lines for one project-written set: what it is, its metrics, flagged rows per ``per``."""
    return [
        f"## {title} (`{path.relative_to(ROOT)}`)", "", about, "", head, row(name, result["all"]), "",
        f"Per {per} (flagged / rows): " + ", ".join(f"{f} {k}/{n}" for f, (k, n) in sorted(result["families"].items())) + ".",
        "",
    ]


def render(overall, per_source, loso, layer_only, fired_by, thresholds, cs, sim_ts, final, args, n_corpus,
           eps_batch, eps_single, eps_nocascade, eps_heur, y, sources, oof, rows, nearest, corpus, maxsim) -> str:
    cols = ["precision", "recall", "f1", "auroc", "fpr", "balanced_accuracy", "n"]

    def row(name, m):
        return f"| {name} | " + " | ".join(str(m[c]) if c == "n" else _fmt(m[c]) for c in cols) + " |"

    head = "| set | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 1)
    lines = [
        "# Injection detector: out-of-sample results",
        "",
        f"Data: `{args.data.name}` ({len(y)} rows, {int(y.sum())} positive). Generated by `python -m detectors.training.injection`"
        f" (seed {SEED}). Embedder: `detectors.embeddings.default_embedder()`. Attack corpus: {n_corpus} hand-written attacks.",
        "",
        f"Classifier: class-balanced logistic regression on {len(final.coef)} standardised features (embedding,"
        f" {len(FAMILIES)} heuristic-family flags, heuristic score, max corpus similarity, {len(STAT_NAMES)} surface statistics);"
        f" {args.n_background} background benign prompts (`{args.background}`, Alpaca-style instructions and GSM8K"
        f" questions) are extra negatives in every logistic fit at {BACKGROUND_WEIGHT:.0%} of the labelled-benign weight"
        " (never used for thresholds or metrics).",
        f" {sum(args.n_synthetic)} project-written synthetic rows ({args.n_synthetic[0]} attacks, {args.n_synthetic[1]} benign;"
        " seven languages, `detectors/training/injection_synth.py`) join every fit at weight"
        f" {args.synth_weight} each (never scored, never used for thresholds)." if sum(args.n_synthetic) else
        " No synthetic rows (`--no-synthetic`).",
        "",
        "Every number below is out of sample: the logistic regression, its C (inner 5-fold CV), the classifier"
        f" threshold (max F1 with FPR <= {args.max_fpr:.0%} on inner out-of-fold probabilities) and the similarity threshold"
        f" (max training-benign similarity + {SIM_MARGIN}, at least {SIM_FLOOR}) are all chosen on the training folds only. Detector threshold: 0.5 on the"
        " combined score (each layer is centred so its own operating point is 0.5).",
        "",
        "## Stratified 5-fold CV (strata = source x label)",
        "",
        head,
        row("**all**", overall),
        *[row(s, m) for s, m in per_source.items()],
        "",
        "Per-source rows with one class only have undefined AUROC/FPR or recall (shown as — or 0).",
        "",
        f"Fold choices: C = {cs}; classifier probability thresholds = {[round(t, 3) for t in thresholds]};"
        f" similarity thresholds = {[round(t, 3) for t in sim_ts]}.",
        "",
        "Which layer gave the winning score on flagged rows: " + ", ".join(f"{k} {v}" for k, v in sorted(fired_by.items())) + ".",
        "",
        "### Single layers (same CV)",
        "",
        head,
        *[row(k, m) for k, m in layer_only.items()],
        "",
        "Heuristics have no trained parameters (hand-written rules), so their row is the same in and out of sample.",
        "",
        "## Leave-one-source-out (train on the other sources, score the held-out one)",
        "",
        head,
        *[row(s, m) for s, m in loso.items()],
        "",
        "Single-class sources: for an all-benign source read the FPR (1 - specificity); for an all-attack source read recall.",
        "",
        "### Honest folds (after): what a held-out source lent its fold is taken back",
        "",
        "Corpus items sharing a five-word sequence with a held-out row (or within cosine 0.9 of one) and rules that fire"
        " on the held-out source alone (and on none of the project's own attacks) are dropped from that fold, in training"
        " and scoring (`detectors/training/injection_folds.py`); synthetic rows that share a five-word sequence with a held-out"
        " row (or paraphrase one) leave that fold's training too. The table above is the *before*: corpus and rules fixed.",
        "",
        head,
        *[row(s, m) for s, m in args.honest.items()],
        "",
        "Moved per fold: " + "; ".join(f"{s}: {n} corpus items, {n_synth} synthetic rows, {len(rules)} rules ({', '.join(rules[:6])}{', ...' if len(rules) > 6 else ''})"
                                       for s, (n, n_synth, rules) in args.moved.items()) + ".",
        "",
        *project_section("Project-written set", PROJECT_SET, "project-written", args.project, "family", head, row,
                         "Attacks written for this project (role-play, eleven languages, base64 / rot13 / hex / leetspeak / spaced /"
                         " Unicode-tag payloads, override, extraction) and benign hard negatives (role-play requests, security"
                         " questions, code questions with tracebacks, other languages). Never used to fit the classifier, but the"
                         " rules written for this round were written beside it, so read the heuristics' share as in-sample."),
        *project_section("Project held-out set", HELDOUT_SET, "project-heldout", args.heldout, "language", head, row,
                         "Attacks and benign prompts written after the synthetic training rows, in other words than theirs and in"
                         " three languages they lack (Swedish, Polish, Turkish): role-play jailbreaks, hijacks after an ordinary"
                         " question, overrides, extraction; benign role-play, security questions, code, and trigger words in their"
                         " ordinary sense. Never used to fit or to choose anything."),
        *project_section("Project held-out role-play set", HELDOUT_ROLEPLAY_SET, "project-heldout-roleplay",
                         args.heldout_roleplay, "language", head, row,
                         "Role-play and framed jailbreaks (TV characters, interactive stories, thought experiments, dual"
                         " answers, a late relative, red-team mode) and a benign twin of each in the same framing, in eight"
                         " languages, written after the synthetic rows. Never used to fit; it decided against shipping an"
                         " experiment (framed requests in the synthetic rows, see BENCHMARKS.md)."),
        "## Final model (fit on all rows)",
        "",
        f"C = {final.C}; probability threshold = {final.threshold:.4f}; similarity threshold = {final.sim_threshold:.4f}"
        f" (slope {final.sim_scale}); {len(final.coef)} features.",
        "",
        "## Throughput (this machine, 2 shared CPU cores)",
        "",
        f"- heuristics only: {eps_heur:,.0f} events/s",
        f"- `detect_batch`, cascade on: {eps_batch:,.1f} events/s ({len(rows[::4])} dev prompts)",
        f"- `detect_batch`, cascade off: {eps_nocascade:,.1f} events/s ({len(rows[2::4])} other dev prompts)",
        f"- `detect` one at a time: {eps_single:,.1f} events/s (100 other dev prompts)",
        "",
        "## Out-of-fold errors (first 25 of each kind)",
        "",
    ]
    fn = [i for i in range(len(y)) if y[i] == 1 and oof[i] < 0.5]
    fp = [i for i in range(len(y)) if y[i] == 0 and oof[i] >= 0.5]
    lines.append(f"False negatives: {len(fn)}; false positives: {len(fp)}.")
    lines.append("")
    for name, idx in (("FN", fn), ("FP", fp)):
        for i in idx[:25]:
            text = rows[i]["prompt"].replace("\n", " ").replace("|", "/")[:140]
            lines.append(f"- {name} `{sources[i]}` score {oof[i]:.2f}: {text}")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
