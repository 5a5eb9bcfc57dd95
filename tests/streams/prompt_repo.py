"""A git repository of prompts for the prompt registry tests (a fixture in tests/streams/conftest.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from streams.client.prompt_files import PromptFile

GOOD = """---
model: openai/gpt-4o-mini
config: {temperature: 0.2}
input:
  schema:
    question: string
---
{{role "system"}}
You are a helpful support agent.
{{role "user"}}
{{question}}
"""
WORSE = GOOD.replace("You are a helpful support agent.", "Answer.")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


def make_repo(tmp_path: Path) -> Path:
    """A git repo whose prompts/ has two committed versions of 'support'."""
    root = tmp_path / "prompts"
    root.mkdir()
    git(tmp_path, "init", "-q")
    (root / "support.prompt").write_text(GOOD)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "first support prompt")
    (root / "support.prompt").write_text(WORSE)
    git(tmp_path, "commit", "-q", "-am", "shorter system prompt")
    return root


def versions() -> tuple[str, str]:
    return PromptFile.parse("support", GOOD).version, PromptFile.parse("support", WORSE).version
