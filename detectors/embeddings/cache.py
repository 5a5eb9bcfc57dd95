"""A thread-safe LRU cache of embeddings keyed by a hash of the text, and token chunking.

System prompts, few-shot blocks and retrieved passages repeat across LLM calls, so most texts a
detector embeds have been embedded before; caching by a digest keeps the memory per entry at
16 bytes of key plus the vector.

    >>> import numpy as np
    >>> c = EmbeddingCache(maxsize=2)
    >>> c.put("a", np.ones(3, np.float32)); c.get("a") is not None, c.get("b") is None
    (True, True)
    >>> c.info()
    CacheInfo(hits=1, misses=1, maxsize=2, currsize=1)
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import NamedTuple, Sequence

import numpy as np


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    """LRU map text -> vector. ``maxsize=0`` disables caching (every lookup is a miss)."""

    def __init__(self, maxsize: int = 10000) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> np.ndarray | None:
        key = text_key(text)
        with self._lock:
            vec = self._data.get(key)
            if vec is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return vec

    def put(self, text: str, vec: np.ndarray) -> None:
        if self.maxsize <= 0:
            return
        key = text_key(text)
        vec = vec.copy()
        vec.setflags(write=False)  # callers get this very array back; keep it immutable
        with self._lock:
            self._data[key] = vec
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self.hits, self.misses, self.maxsize, len(self._data))

    def __len__(self) -> int:
        return len(self._data)

    # Pickled detectors should not drag megabytes of vectors along; an unpickled cache starts empty.
    def __getstate__(self) -> dict:
        return {"maxsize": self.maxsize}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["maxsize"])


def chunk_ids(ids: Sequence[int], window: int) -> list[list[int]]:
    """Split content token ids into consecutive windows of at most ``window`` tokens.

    >>> chunk_ids(list(range(5)), 2)
    [[0, 1], [2, 3], [4]]
    >>> chunk_ids([], 2)
    [[]]
    """
    if window <= 0:
        raise ValueError("window must be positive")
    if not ids:
        return [[]]
    return [list(ids[i : i + window]) for i in range(0, len(ids), window)]
