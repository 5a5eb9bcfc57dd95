"""Embedding backends: speed (texts/s at 2 threads) and parity with sentence-transformers.

    .venv/bin/python bench/bench_embeddings.py            # prints tables, writes bench/results/embeddings.md

Texts are real prompts, responses and retrieved passages from ../shared/eval/*.jsonl (or
``$LLMWATCH_EVAL_DIR``). Speed runs with the embedding cache off, backends interleaved, best of
``--repeats`` rounds (the machine is shared, so the best round is the least disturbed one).
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from detectors.embeddings.onnx_backend import OnnxEmbedder  # noqa: E402

THREADS = 2


def eval_texts(eval_dir: str) -> list[str]:
    """Every distinct prompt, response and context passage, shuffled with a fixed seed."""
    texts: set[str] = set()
    for path in sorted(glob.glob(os.path.join(eval_dir, "*.jsonl"))):
        with open(path) as fh:
            for line in fh:
                row = json.loads(line)
                texts.update(t for t in (row.get("prompt"), row.get("response")) if t)
                texts.update(c for c in row.get("context") or [] if c)
    out = sorted(texts)
    random.Random(0).shuffle(out)
    return out


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores visible, {THREADS} threads per backend"


def cpu_flags() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
    except (OSError, IndexError):
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)


class Reference:
    """sentence-transformers + torch at 2 threads; also embeds ready-made token id chunks."""

    def __init__(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        from detectors.embeddings.model_files import model_dir

        torch.set_num_threads(THREADS)
        self.torch = torch
        self.model = SentenceTransformer(str(model_dir()), device="cpu")

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)

    def embed_ids(self, seqs: list[list[int]]) -> np.ndarray:
        out = []
        with self.torch.inference_mode():
            for ids in seqs:
                t = self.torch.tensor([ids])
                feats = {"input_ids": t, "attention_mask": self.torch.ones_like(t), "token_type_ids": self.torch.zeros_like(t)}
                v = self.model(feats)["sentence_embedding"][0].numpy()
                out.append(v / max(np.linalg.norm(v), 1e-12))
        return np.array(out, dtype=np.float32)


def chunked_reference(ref: Reference, emb: OnnxEmbedder, text: str) -> np.ndarray:
    """The reference model run on the same 256-token windows, combined as OnnxEmbedder does."""
    chunks = emb.token_chunks(text)
    vecs = ref.embed_ids(chunks)
    w = np.array([max(len(c) - 2, 1) for c in chunks], dtype=np.float32)
    v = (vecs * w[:, None]).sum(0)
    return v / np.linalg.norm(v)


def parity(ref: Reference, backends: dict[str, OnnxEmbedder], short: list[str], long: list[str]) -> list[list[str]]:
    """Rows: backend, set, min / mean / p1 cosine to the reference."""
    r_short = ref.encode(short)
    probe = backends["onnx fp32"]
    r_first = ref.encode(long)  # sentence-transformers truncates at 256 tokens
    r_chunked = np.array([chunked_reference(ref, probe, t) for t in long])
    rows = []
    for name, emb in backends.items():
        first = emb.embed_token_ids([emb.token_chunks(t)[0] for t in long])
        sets = {
            f"{len(short)} short/medium texts (<= 256 tokens)": (emb.encode(short), r_short),
            f"{len(long)} long texts, first 256-token window vs truncated reference": (first, r_first),
            f"{len(long)} long texts, chunked vs chunked reference": (emb.encode(long), r_chunked),
        }
        for label, (a, b) in sets.items():
            cos = (a * b).sum(1)
            rows.append([name, label, f"{cos.min():.4f}", f"{cos.mean():.4f}", f"{np.percentile(cos, 1):.4f}"])
    return rows


def speed(encoders: dict, short: list[str], long: list[str], repeats: int) -> dict[str, tuple[float, float]]:
    best = {name: [0.0, 0.0] for name in encoders}
    for _ in range(repeats):
        for name, enc in encoders.items():
            for k, texts in enumerate((short, long)):
                start = time.perf_counter()
                enc(texts)
                best[name][k] = max(best[name][k], len(texts) / (time.perf_counter() - start))
    return {k: (v[0], v[1]) for k, v in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", default=os.environ.get("LLMWATCH_EVAL_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "eval")))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-short", type=int, default=128, help="~20-token texts per speed round")
    ap.add_argument("--n-long", type=int, default=32, help="~250-token texts per speed round")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "embeddings.md"))
    ap.add_argument("--skip-parity", action="store_true")
    args = ap.parse_args()
    console = Console()

    backends = {f"onnx {p}": OnnxEmbedder(precision=p, threads=THREADS, cache_size=0) for p in ("fp32", "int8")}
    ref = Reference()
    tok = backends["onnx fp32"]
    texts = eval_texts(args.eval_dir)
    lengths = [sum(len(c) - 2 for c in tok.token_chunks(t)) + 2 for t in texts]  # ids incl. [CLS]/[SEP]
    speed_short = [t for t, n in zip(texts, lengths) if 18 <= n <= 24][: args.n_short]
    speed_long = [t for t, n in zip(texts, lengths) if 236 <= n <= 256][: args.n_long]
    par_short = [t for t, n in zip(texts, lengths) if n <= 256][:300]
    par_long = [t for t, n in zip(texts, lengths) if n > 300][:50]

    md: list[str] = [
        "# Embedding backends: speed and parity",
        "",
        f"- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- machine: {machine()}",
        f"- load average at start: {os.getloadavg()[0]:.1f} (shared machine: absolute figures vary, ratios less so)",
        "- command: `.venv/bin/python bench/bench_embeddings.py`",
        "",
    ]

    if not args.skip_parity:
        rows = parity(ref, backends, par_short, par_long)
        table = Table(title="cosine to sentence-transformers (all-MiniLM-L6-v2)")
        for col in ("backend", "texts", "min", "mean", "p1"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        md += ["## Parity with sentence-transformers", "", "| backend | texts | min cos | mean cos | 1st pct |",
               "| --- | --- | --- | --- | --- |"]
        md += [f"| {' | '.join(r)} |" for r in rows]
        md += ["", "sentence-transformers truncates at 256 tokens while OnnxEmbedder chunks, so long texts are",
               "compared twice: the first 256-token window against the truncated reference (same input), and",
               "the chunked ONNX vector against the reference model run on the same windows and combined the",
               "same way (token-weighted mean, re-normalised).", ""]

    encoders = {
        "sentence-transformers (torch)": lambda t: ref.encode(t, batch_size=32),
        **{name: e.encode for name, e in backends.items()},
    }
    res = speed(encoders, speed_short, speed_long, args.repeats)
    base_s, base_l = res["sentence-transformers (torch)"]
    table = Table(title=f"texts/s, {THREADS} threads, batch 32, best of {args.repeats}")
    for col in ("backend", "short (~20 tok)/s", "x", "long (~250 tok)/s", "x"):
        table.add_column(col)
    md += [f"## Speed (texts/s, {THREADS} threads, batch 32, cache off, best of {args.repeats} rounds)", "",
           f"{len(speed_short)} short texts (18-24 tokens) and {len(speed_long)} long ones (236-256 tokens) per round.", "",
           "| backend | short texts/s | vs torch | long texts/s | vs torch |", "| --- | --- | --- | --- | --- |"]
    for name, (s, l) in res.items():
        row = [name, f"{s:.0f}", f"{s / base_s:.2f}x", f"{l:.1f}", f"{l / base_l:.2f}x"]
        table.add_row(*row)
        md.append(f"| {' | '.join(row)} |")
    console.print(table)
    md += ["", "## Notes", "",
           "- onnx graphs are built from model.safetensors by `detectors/embeddings/onnx_graph.py` and fused",
           "  with onnxruntime's transformer optimiser (Attention, SkipLayerNormalization, BiasGelu).",
           "- int8 = dynamic quantisation, QInt8 weights per output channel, MatMuls only; FFN down-projections",
           "  and layer 0 stay fp32 and the fused Attention (Q/K/V) stays fp32: quantising those drops the",
           "  min cosine to 0.958 (all MatMuls) or 0.965 (QAttention). So only ~1/3 of the FLOPs run in int8.",
           f"- CPU flags: {cpu_flags()}. Without VNNI, onnxruntime's u8s8 int8 GEMM is not much faster than",
           "  fp32 SGEMM, which is why int8 gains little here (a ~2x int8 gain needs VNNI and/or a fully quantised graph).",
           ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(md) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
