"""Training rows for the indirect-injection layer: dev rows with their planted spans, and
project-written attacks planted into passages nobody wrote as attacks.

Every row is ``{"source", "prompt", "context", "label", "spans"}`` where ``spans`` lists, per
passage, the ``(start, end)`` character ranges of planted text (empty for clean rows), so each
candidate segment gets its own label.
"""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from detectors.injection.similarity import DATA_DIR

SHARED_EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval"
DEV_PATH = SHARED_EVAL / "indirect_injection_dev.jsonl"
GROUNDING_PATH = SHARED_EVAL / "grounding_dev.jsonl"
ATTACKS_PATH = DATA_DIR / "indirect_attacks.jsonl"
#: attacks written after the multilingual cues, never trained on (two languages the cues lack)
HELDOUT_ATTACKS_PATH = DATA_DIR / "indirect_attacks_heldout.jsonl"
#: non-English how-to passages full of imperatives, never trained on: the false alarms of those cues
HELDOUT_CLEAN_PATH = DATA_DIR / "indirect_clean_heldout.jsonl"
CLEAN_PATH = DATA_DIR / "indirect_clean_passages.jsonl"
PROJECT_SOURCE = "project-planted"
HELDOUT_SOURCE = "project-heldout"
#: clean prose passages borrowed from each grounding dev source (documents, not attacks)
PASSAGES_PER_SOURCE = 60


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _inserted(clean: str, attacked: str) -> list[tuple[int, int]]:
    ops = difflib.SequenceMatcher(None, clean, attacked, autojunk=False).get_opcodes()
    return [(j1, j2) for op, _, _, j1, j2 in ops if op in ("insert", "replace")]


def dev_rows(path: Path = DEV_PATH) -> list[dict[str, Any]]:
    """Dev rows with planted spans, recovered by diffing each attacked row against its clean twin.

    The dev file holds each context once clean and once attacked, with the same prompt; a
    positive row without a clean twin gets its whole context marked.
    """
    rows = load_jsonl(path)
    clean = {(r["source"], r["prompt"], len(r["context"] or [])): r for r in rows if r["label"] == 0}
    out = []
    for r in rows:
        ctx = list(r["context"] or [])
        spans: list[list[tuple[int, int]]] = [[] for _ in ctx]
        if r["label"] == 1:
            twin = clean.get((r["source"], r["prompt"], len(ctx)))
            for i, passage in enumerate(ctx):
                spans[i] = _inserted(twin["context"][i], passage) if twin else [(0, len(passage))]
        out.append({**r, "context": ctx, "spans": spans})
    return out


def _plant(passage: str, attack: dict[str, Any], rng: np.random.Generator) -> tuple[str, tuple[int, int]]:
    """Insert ``attack`` at the start, middle or end of ``passage``, on its own line or inline."""
    text = attack["text"] + (f"\n```\n{attack['code']}\n```" if attack.get("code") else "")
    where = int(rng.integers(3))
    own_line = bool(attack.get("code")) or rng.random() < 0.5
    cut = 0 if where == 0 else len(passage) if where == 2 else _sentence_boundary(passage, len(passage) // 2)
    before, after = passage[:cut], passage[cut:]
    sep = "\n" if own_line else " "
    lead = (before.rstrip() + sep) if before.strip() else ""
    tail = (sep + after.lstrip()) if after.strip() else ""
    return lead + text + tail, (len(lead), len(lead) + len(text))


def _sentence_boundary(text: str, near: int) -> int:
    ends = [i + 1 for i, ch in enumerate(text) if ch in ".!?\n"]
    return min(ends, key=lambda i: abs(i - near)) if ends else near


def project_rows(seed: int = 0, attacks_path: Path = ATTACKS_PATH, source: str = PROJECT_SOURCE) -> list[dict[str, Any]]:
    """Each borrowed or project-written clean passage once clean and once with a planted attack.

    Prose attacks go into prose passages, code attacks into the code answers (passages get no
    attack when the file has none of their kind), cycling through the attacks in a seeded order
    so each is used about equally.
    """
    rng = np.random.default_rng(seed)
    attacks = load_jsonl(attacks_path)
    prose = [a for a in attacks if not a.get("code")]
    code = [a for a in attacks if a.get("code")]
    passages: list[tuple[str, str, bool]] = []
    seen: dict[str, int] = {}
    for r in load_jsonl(GROUNDING_PATH):
        src = r["source"]
        ctx = (r.get("context") or [""])[0]
        if ctx.strip() and seen.get(src, 0) < PASSAGES_PER_SOURCE and ctx not in {p for _, p, _ in passages}:
            seen[src] = seen.get(src, 0) + 1
            passages.append((r["prompt"], ctx, False))
    for r in load_jsonl(CLEAN_PATH):
        passages.append((r["prompt"], r["context"][0], r["kind"] == "code"))
    order_prose, order_code = rng.permutation(len(prose)), rng.permutation(len(code))
    out = []
    for i, (prompt, passage, is_code) in enumerate(passages):
        pool, order = (code, order_code) if is_code else (prose, order_prose)
        if not pool:
            continue
        attack = pool[order[i % len(pool)]]
        planted, span = _plant(passage, attack, rng)
        out.append({"source": source, "prompt": prompt, "context": [passage], "label": 0, "spans": [[]]})
        out.append({"source": source, "prompt": prompt, "context": [planted], "label": 1, "spans": [[span]],
                    "family": attack["family"], "lang": attack.get("lang", "en")})
    return out


def heldout_rows(seed: int = 1) -> list[dict[str, Any]]:
    """The held-out attacks planted into the prose passages (attacked rows only: the clean
    passages are the project's, which are in training)."""
    rows = project_rows(seed, HELDOUT_ATTACKS_PATH, HELDOUT_SOURCE)
    return [r for r in rows if r["label"] == 1]


def heldout_clean_rows() -> list[dict[str, Any]]:
    """Clean non-English passages (recipes, forms, manuals: imperatives on the user's task)."""
    return [{"source": HELDOUT_SOURCE, "prompt": r["prompt"], "context": r["context"], "label": 0, "spans": [[]],
             "lang": r["lang"]} for r in load_jsonl(HELDOUT_CLEAN_PATH)]


_SENTENCE_GAP = re.compile(r"[.!?]\s")


def inline_variants(rows: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Each attacked dev row once more, its planted text moved inline: into a prose line of the
    clean twin, after a sentence. Training only (``"augmented": True``; never scored).

    BIPIA plants every attack on a line of its own, so a layer fitted on it alone learns "own
    line" as a shortcut and misses an instruction tucked into a paragraph.
    """
    rng = np.random.default_rng(seed)
    clean = {(r["source"], r["prompt"], len(r["context"])): r for r in rows if r["label"] == 0}
    out = []
    for r in rows:
        twin = clean.get((r["source"], r["prompt"], len(r["context"]))) if r["label"] == 1 else None
        if twin is None or r["source"] == PROJECT_SOURCE:
            continue
        ctx, spans = list(twin["context"]), [[] for _ in twin["context"]]
        for i, planted in enumerate(r["spans"]):
            text = r["context"][i][planted[0][0]: planted[0][1]].strip() if len(planted) == 1 else ""
            if text and "\n" not in text:
                ctx[i], spans[i] = _plant_inline(ctx[i], text, rng)
        if any(spans):
            out.append({**r, "context": ctx, "spans": spans, "augmented": True})
    return out


def _plant_inline(passage: str, text: str, rng: np.random.Generator) -> tuple[str, list[tuple[int, int]]]:
    """``text`` inserted after a random sentence of a random prose line (unchanged if none)."""
    lines = passage.split("\n")
    prose = [k for k, line in enumerate(lines) if _SENTENCE_GAP.search(line)]
    if not prose:
        return passage, []
    k = prose[int(rng.integers(len(prose)))]
    gaps = [m.end() for m in _SENTENCE_GAP.finditer(lines[k])]
    cut = gaps[int(rng.integers(len(gaps)))]
    lines[k] = lines[k][:cut] + text + " " + lines[k][cut:]
    start = sum(len(line) + 1 for line in lines[:k]) + cut
    return "\n".join(lines), [(start, start + len(text))]


def training_rows(seed: int = 0) -> list[dict[str, Any]]:
    """What the layer is fitted on: the dev rows, the project's planted rows, and the dev attacks
    moved inline (:func:`inline_variants`)."""
    rows = dev_rows() + project_rows(seed)
    return rows + inline_variants(rows, seed)
