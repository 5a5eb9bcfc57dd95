"""Sentence embeddings for the detectors (all-MiniLM-L6-v2, offline).

Every detector that needs embeddings takes an ``Embedder`` (anything with ``encode`` and
``dim``) in its constructor and defaults to :func:`default_embedder`, so tests and the worker
share one loaded model per process.

``encode(texts)`` returns a float32 array of shape ``(len(texts), dim)`` whose rows have unit
L2 norm, so a dot product is a cosine similarity.

Backends (env ``LLMWATCH_EMBEDDER``):

* ``onnx-int8`` (default): onnxruntime + tokenizers, int8 weights, no torch; see
  ``bench/results/embeddings.md`` for its speed and its parity with the reference.
* ``onnx-fp32``: the same graph with fp32 weights.
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
# int8 clears the bar (cosine to the reference >= 0.98 on 300 eval texts: min 0.981, mean 0.997)
# and is never slower than fp32 (same on short texts, ~1.15x on long ones on an AVX2 CPU without
# VNNI); fp32 is exact (cosine 1.0000). See bench/results/embeddings.md.
DEFAULT_BACKEND = "onnx-int8"


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
