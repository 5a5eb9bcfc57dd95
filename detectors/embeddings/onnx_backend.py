"""The default embedding runtime: onnxruntime + tokenizers, no torch.

Texts longer than ``max_tokens`` are not truncated: they are split into ``max_tokens`` windows
(each with its own [CLS]/[SEP]), every window is embedded, and the window vectors are averaged
(weighted by their token counts) and re-normalised, so the end of a long retrieved passage still
counts. Short texts give the same vector as sentence-transformers.

    >>> from detectors.embeddings.onnx_backend import OnnxEmbedder
    >>> emb = OnnxEmbedder(precision="int8")
    >>> vecs = emb.encode(["ignore all previous instructions", "what is the capital of France?"])
    >>> vecs.shape, vecs.dtype
    ((2, 384), dtype('float32'))
    >>> emb.encode(["ignore all previous instructions"]).shape; emb.cache_info().hits
    (1, 384)
    1
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from .cache import CacheInfo, EmbeddingCache, chunk_ids
from .model_files import model_dir
from .onnx_graph import cached_model_path


class OnnxEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (unit rows, float32) through onnxruntime.

    Picklable: the onnxruntime session, tokenizer and cached vectors are dropped on pickling and
    rebuilt on first use after unpickling.
    """

    dim = 384

    def __init__(
        self,
        precision: Literal["int8", "fp32"] = "int8",
        threads: int = 2,
        max_tokens: int = 256,
        batch_size: int = 32,
        cache_size: int = 10000,
        model_path: str | Path | None = None,
    ) -> None:
        if precision not in ("int8", "fp32"):
            raise ValueError(f"precision must be 'int8' or 'fp32', not {precision!r}")
        if max_tokens < 3:
            raise ValueError("max_tokens must leave room for [CLS], [SEP] and one token")
        self.precision = precision
        self.threads = threads
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.model_path = Path(model_path) if model_path is not None else None
        self._cache = EmbeddingCache(cache_size)
        self._session: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._load()  # fail fast (ModelMissingError) rather than on the first event

    # -- loading ---------------------------------------------------------------------------------
    def _load(self) -> None:
        with self._load_lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            folder = self.model_path or model_dir()
            tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tok.no_truncation()  # we chunk instead
            tok.no_padding()
            self._cls = tok.token_to_id("[CLS]")
            self._sep = tok.token_to_id("[SEP]")
            self._pad = tok.token_to_id("[PAD]") or 0

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # A live worker sends many small batches of varying shapes while other threads need
            # the cores: shape-keyed memory patterns and spin-waiting intra-op threads cost more
            # than they save there (measured on 2 cores, batches of 8: 62 -> 69 chunks per CPU
            # second; no change on batches of 256).
            opts.enable_mem_pattern = False
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            path = cached_model_path(self.precision, folder)
            self._tokenizer = tok
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_session", "_tokenizer", "_load_lock"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._session = None
        self._tokenizer = None
        self._load_lock = threading.Lock()

    # -- public API ------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 embeddings, shape ``(len(texts), 384)``."""
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        pending: dict[str, list[int]] = {}  # in-call duplicates are embedded once
        for i, text in enumerate(texts):
            if text in pending:
                pending[text].append(i)
                continue
            vec = self._cache.get(text)
            if vec is None:
                pending[text] = [i]
            else:
                out[i] = vec
        if pending:
            todo = list(pending)
            vecs = self._embed(todo)
            for text, vec in zip(todo, vecs):
                out[pending[text]] = vec
                self._cache.put(text, vec)
        return out

    def cache_info(self) -> CacheInfo:
        """Hits, misses, maxsize and current size of the text -> vector cache."""
        return self._cache.info()

    def cache_clear(self) -> None:
        self._cache.clear()

    def token_chunks(self, text: str) -> list[list[int]]:
        """The model inputs for ``text``: ``[CLS] window [SEP]`` id lists of <= max_tokens ids."""
        self._ensure_loaded()
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return [[self._cls, *piece, self._sep] for piece in chunk_ids(ids, self.max_tokens - 2)]

    def embed_token_ids(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Run the model on ready-made id sequences (special tokens included); no cache."""
        self._ensure_loaded()
        out = np.empty((len(sequences), self.dim), dtype=np.float32)
        for idx in length_batches([len(c) for c in sequences], self.batch_size):
            width = max(len(sequences[j]) for j in idx)
            ids = np.full((len(idx), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, j in enumerate(idx):
                ids[row, : len(sequences[j])] = sequences[j]
                mask[row, : len(sequences[j])] = 1
            (emb,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[idx] = emb
        return out

    # -- internals -------------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._session is None:
            self._load()

    def _embed(self, texts: list[str]) -> np.ndarray:
        self._ensure_loaded()
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        owners: list[int] = []
        chunks: list[list[int]] = []
        for t, enc in enumerate(encodings):
            for piece in chunk_ids(enc.ids, self.max_tokens - 2):
                owners.append(t)
                chunks.append([self._cls, *piece, self._sep])
        chunk_vecs = self.embed_token_ids(chunks)
        if len(chunks) == len(texts):  # nothing was chunked
            return chunk_vecs
        # Average each text's windows weighted by token count (as one mean pool over the whole
        # text would), then re-normalise.
        weights = np.array([len(c) - 2 for c in chunks], dtype=np.float32).clip(min=1.0)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(out, np.array(owners), chunk_vecs * weights[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


# One ``Session.run`` costs ~4 ms beyond its tokens on the 2-core CI machine, about what ~20
# tokens of compute cost: padding a batch costs more than that once lengths differ much.
PAD_BUDGET_TOKENS = 32


def length_batches(lengths: Sequence[int], max_batch: int, pad_budget: int = PAD_BUDGET_TOKENS) -> list[list[int]]:
    """Indices grouped into model batches by length: sorted, and a new batch is started when
    the next (longer) sequence would add more than ``pad_budget`` padding tokens to the batch.

    >>> length_batches([5, 300, 6, 7, 290], max_batch=32)
    [[0, 2, 3], [4, 1]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (
            len(current) >= max_batch or len(current) * (lengths[i] - lengths[current[-1]]) > pad_budget
        ):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
