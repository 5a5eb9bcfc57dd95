"""Sentence embeddings for the detectors (all-MiniLM-L6-v2, offline).

Every detector that needs embeddings takes an ``Embedder`` (anything with ``encode`` and
``dim``) in its constructor and defaults to :func:`default_embedder`, so tests and the worker
share one loaded model per process.

``encode(texts)`` returns a float32 array of shape ``(len(texts), dim)`` whose rows have unit
L2 norm, so a dot product is a cosine similarity.

Backends (env ``LLMWATCH_EMBEDDER``):

* ``onnx-fp32`` (default): onnxruntime + tokenizers, no torch, identical to the reference; see
  ``bench/results/embeddings.md`` for its speed and its parity with the reference.
* ``onnx-int8``: the same graph with int8 weights (vectors depend slightly on batch composition).
* ``sentence-transformers``: the torch reference (needs the ``reference`` extra).

    >>> from detectors.embeddings import default_embedder
    >>> default_embedder().encode(["hello"]).shape
    (1, 384)
"""
from __future__ import annotations

import functools
import os
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .model_files import FIX, ModelMissingError

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Embedder", "FIX", "ModelMissingError", "default_embedder", "make_embedder"]

BACKENDS = ("onnx-int8", "onnx-fp32", "sentence-transformers")
# fp32: identical to the reference (cosine 1.0000) and batch-independent. int8 uses dynamic
# quantisation, whose activation scales depend on the other texts in the batch, so the same
# text gets a different vector (max |diff| 0.013) in another batch: a replayed event would get
# another score. On this CPU (AVX2, no VNNI) int8 is only ~1.0-1.15x faster, so fp32 it is.
DEFAULT_BACKEND = "onnx-fp32"


@runtime_checkable
class Embedder(Protocol):
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - protocol
        ...


def make_embedder(backend: str | None = None) -> Embedder:
    """A new embedder for ``backend`` (default: ``$LLMWATCH_EMBEDDER`` or :data:`DEFAULT_BACKEND`)."""
    backend = (backend or os.environ.get("LLMWATCH_EMBEDDER") or DEFAULT_BACKEND).strip().lower()
    if backend in ("onnx-int8", "onnx-fp32"):
        from .onnx_backend import OnnxEmbedder

        return OnnxEmbedder(precision=backend.removeprefix("onnx-"))  # type: ignore[arg-type]
    if backend == "sentence-transformers":
        from .reference import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    raise ValueError(f"LLMWATCH_EMBEDDER={backend!r} is not one of {', '.join(BACKENDS)}")


@functools.lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The process-wide default embedder (loaded once); raises ModelMissingError naming the fix."""
    return make_embedder()
