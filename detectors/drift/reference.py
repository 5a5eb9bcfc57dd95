"""Reference policies: which past embeddings the current window is compared against.

A :class:`Windows` holds, for one stream key and one text signal (prompt or response), a
reference sample and a current window of embeddings:

- ``"fixed"``: the reference is the first ``reference_size`` embeddings of the key and never
  moves; after an alarm only the current window is cleared, so a stream that stays changed
  alarms again after each fresh window ("still differs from its baseline").
- ``"rolling"``: the reference is the ``reference_size`` embeddings just before the current
  window (one sliding buffer of ``reference_size + window_size``), so slow benign evolution is
  absorbed; after an alarm everything is cleared and the reference rebuilds from post-change data.

Embeddings are stored as float16 (half the memory, and the state dict is exact: what is saved
is what is tested).

>>> import numpy as np
>>> w = Windows("rolling", reference_size=3, window_size=2)
>>> for i in range(5):
...     w.add(np.full(4, i, dtype=np.float32))
>>> w.ready, w.reference()[:, 0].tolist(), w.current()[:, 0].tolist()
(True, [0.0, 1.0, 2.0], [3.0, 4.0])
"""
from __future__ import annotations

import base64
from collections import deque
from typing import Any

import numpy as np

POLICIES = ("fixed", "rolling")
_DTYPE = np.float16


def encode_array(rows: np.ndarray) -> dict[str, Any]:
    """A float16 matrix as JSON-able types: shape plus base64 of its little-endian bytes."""
    arr = np.ascontiguousarray(rows, dtype=np.dtype(_DTYPE).newbyteorder("<"))
    return {"shape": list(arr.shape), "f16": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(data: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    raw = base64.b64decode(data["f16"])
    arr = np.frombuffer(raw, dtype=np.dtype(_DTYPE).newbyteorder("<")).astype(_DTYPE)
    return arr.reshape([int(s) for s in data["shape"]])


class Windows:
    """Reference and current embedding windows for one (key, signal) under one policy."""

    def __init__(self, policy: str, reference_size: int, window_size: int) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        self.policy = policy
        self.reference_size = reference_size
        self.window_size = window_size
        self._reset()

    def _reset(self) -> None:
        if self.policy == "rolling":
            self._buffer: deque[np.ndarray] = deque(maxlen=self.reference_size + self.window_size)
        else:
            self._reference: list[np.ndarray] = []
            self._current: deque[np.ndarray] = deque(maxlen=self.window_size)

    def add(self, vector: np.ndarray) -> None:
        """Append one embedding (it enters the reference first while that is filling)."""
        v = np.asarray(vector, dtype=_DTYPE)
        if self.policy == "rolling":
            self._buffer.append(v)
        elif len(self._reference) < self.reference_size:
            self._reference.append(v)
        else:
            self._current.append(v)

    @property
    def n_reference(self) -> int:
        if self.policy == "rolling":
            return min(len(self._buffer), self.reference_size)
        return len(self._reference)

    @property
    def n_current(self) -> int:
        if self.policy == "rolling":
            return max(0, len(self._buffer) - self.reference_size)
        return len(self._current)

    @property
    def ready(self) -> bool:
        """Both windows are full, so a test can run."""
        return self.n_reference == self.reference_size and self.n_current == self.window_size

    def reference(self) -> np.ndarray:
        rows = list(self._buffer)[: self.reference_size] if self.policy == "rolling" else self._reference
        return _stack(rows)

    def current(self) -> np.ndarray:
        if self.policy == "rolling":
            return _stack(list(self._buffer)[self.reference_size :])
        return _stack(list(self._current))

    def after_alarm(self) -> None:
        """Rolling: rebuild everything from post-alarm data. Fixed: keep the baseline, refill the window."""
        if self.policy == "rolling":
            self._buffer.clear()
        else:
            self._current.clear()

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able state (embeddings as base64 float16)."""
        if self.policy == "rolling":
            return {"policy": self.policy, "buffer": encode_array(_stack(list(self._buffer)))}
        return {
            "policy": self.policy,
            "reference": encode_array(_stack(self._reference)),
            "current": encode_array(_stack(list(self._current))),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("policy") != self.policy:
            raise ValueError(f"state is for policy {state.get('policy')!r}, this window uses {self.policy!r}")
        self._reset()
        if self.policy == "rolling":
            self._buffer.extend(decode_array(state["buffer"]))
        else:
            self._reference.extend(decode_array(state["reference"]))
            self._current.extend(decode_array(state["current"]))


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0), dtype=_DTYPE)
    return np.stack(rows).astype(_DTYPE, copy=False)
