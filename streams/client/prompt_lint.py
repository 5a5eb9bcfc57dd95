"""``llmwatch prompts lint``: every problem of a prompts folder, each as ``file:line: message``.

Checks: the front matter parses and has the Dotprompt shape (``model`` a string, ``config`` and
``input``/``output`` mappings); the template compiles (Handlebars); every variable the template
reads is declared in ``input.schema`` and every declared input is used (when a schema is
declared); every label in ``labels.yaml`` names a known prompt and a version that exists.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.client.prompt_files import PromptError, PromptFile, declared_inputs
from streams.client.prompt_registry import LABELS_FILE, PromptRegistry

_MAPPINGS = ("config", "input", "output", "metadata")


def lint(root: str | Path) -> list[str]:
    """Problems found under ``root`` (empty when the folder is clean)."""
    registry = PromptRegistry(root)
    problems: list[str] = []
    for path in sorted(Path(root).glob("*.prompt")):
        problems += lint_file(path)
    problems += lint_labels(registry)
    return problems


def lint_file(path: Path) -> list[str]:
    name = path.stem
    try:
        prompt = PromptFile.parse(name, path.read_text(encoding="utf-8"))
    except PromptError as exc:
        return [f"{path}:{_line_of(str(exc))}: {exc}"]
    out = [f"{path}:2: {msg}" for msg in _shape(prompt.front)]
    try:
        from dotpromptz_handlebars import Handlebars

        Handlebars().compile(prompt.template)
    except Exception as exc:  # the compiler raises ValueError and friends without a line
        out.append(f"{path}:{prompt.template_line}: template does not compile: {exc}")
        return out
    declared = declared_inputs(prompt.front)
    if declared or "input" in prompt.front:
        for variable in prompt.variables:
            if variable not in declared:
                out.append(f"{path}:{_first_use(prompt, variable)}: variable {variable!r} is used but not declared in input.schema")
        for variable in declared:
            if variable not in prompt.variables:
                out.append(f"{path}:2: input {variable!r} is declared but the template never uses it")
    return out


def lint_labels(registry: PromptRegistry) -> list[str]:
    path = registry.root / LABELS_FILE
    try:
        labels = registry.labels()
    except PromptError as exc:
        return [f"{path}:1: {exc}"]
    out = []
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    names = set(registry.names())
    for name, targets in labels.items():
        if name not in names:
            out.append(f"{path}:{_line_with(lines, name)}: labels for unknown prompt {name!r}")
            continue
        for label, target in targets.items():
            for version in [target] if isinstance(target, str) else list(target):
                try:
                    registry.version(name, version)
                except PromptError:
                    out.append(f"{path}:{_line_with(lines, version)}: label {label!r} of {name!r} points at version "
                               f"{version!r}, which is not in the working tree or git history")
    return out


def _shape(front: dict[str, Any]) -> list[str]:
    out = []
    if "model" in front and not isinstance(front["model"], str):
        out.append("front matter 'model' must be a string like openai/gpt-4o-mini")
    for key in _MAPPINGS:
        if key in front and not isinstance(front[key], dict):
            out.append(f"front matter {key!r} must be a mapping")
    return out


def _first_use(prompt: PromptFile, variable: str) -> int:
    for i, line in enumerate(prompt.template.splitlines()):
        if variable in line:
            return prompt.template_line + i
    return prompt.template_line


def _line_with(lines: list[str], needle: str) -> int:
    return next((i + 1 for i, line in enumerate(lines) if needle in line), 1)


def _line_of(message: str) -> int:
    words = message.split()
    for prev, word in zip(words, words[1:]):
        if prev.endswith("line") and word.rstrip(":").isdigit():
            return int(word.rstrip(":"))
    return 1
