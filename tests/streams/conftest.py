"""Fixtures shared by the stream tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.streams.prompt_repo import make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repo whose prompts/ holds two committed versions of 'support'."""
    return make_repo(tmp_path)
