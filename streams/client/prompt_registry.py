"""Prompts kept in git: ``prompts/<name>.prompt`` files and ``prompts/labels.yaml``.

Every version ever committed can be loaded by its hash: the working tree's file, then each commit
that touched it (``git log`` / ``git show``). ``labels.yaml`` maps each prompt's labels to a
version, or to a weighted split for an A/B test::

    support_agent:
      production: 3f2a9c1b7e
      staging: {3f2a9c1b7e: 90, 8d01e4aa52: 10}

An arm is chosen deterministically from a key the caller passes (a user or session id), so one
user keeps one arm. ``rollback`` moves a label to the value it had before its current one, read
from the history of ``labels.yaml`` (the working tree first, then its commits).

>>> pick({"a": 90, "b": 10}, "user-1") == pick({"a": 90, "b": 10}, "user-1")
True
"""
from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from streams.client.prompt_files import PromptError, PromptFile, load_yaml

LABELS_FILE = "labels.yaml"
Target = str | dict[str, int]  # a version, or version -> weight


def pick(target: Target, key: str | None) -> str:
    """The version a label gives ``key``: the version itself, or a weighted arm by hash of ``key``."""
    if isinstance(target, str):
        return target
    arms = sorted(target.items())
    total = sum(weight for _, weight in arms)
    if total <= 0:
        raise PromptError(f"a split needs positive weights, got {dict(arms)}")
    point = int.from_bytes(hashlib.sha256((key or "").encode()).digest()[:8], "big") % total
    for version, weight in arms:
        if point < weight:
            return version
        point -= weight
    return arms[-1][0]


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    date: str  # ISO 8601
    subject: str


class PromptRegistry:
    """The prompts under ``root`` (a ``prompts/`` folder, usually inside a git checkout)."""

    def __init__(self, root: str | Path = "prompts") -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ files
    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.prompt"))

    def path(self, name: str) -> Path:
        return self.root / f"{name}.prompt"

    def current(self, name: str) -> PromptFile:
        """The working tree's version of ``name``."""
        path = self.path(name)
        if not path.is_file():
            known = ", ".join(self.names()) or "none"
            raise PromptError(f"no prompt {name!r} in {self.root} (known: {known})")
        return PromptFile.parse(name, path.read_text(encoding="utf-8"))

    def history(self, name: str) -> Iterator[tuple[Commit, PromptFile]]:
        """Each committed version of ``name``, newest first (one entry per commit touching the file)."""
        for commit in self._log(self.path(name)):
            source = self._show(commit.sha, self.path(name))
            if source is not None:
                try:
                    yield commit, PromptFile.parse(name, source)
                except PromptError:
                    continue  # a broken file in history is not a version

    def version(self, name: str, version: str) -> PromptFile:
        """``name`` at ``version`` (a hash or a unique prefix), from the working tree or git history."""
        current = self.current(name) if self.path(name).is_file() else None
        if current is not None and current.version.startswith(version):
            return current
        for _, prompt in self.history(name):
            if prompt.version.startswith(version):
                return prompt
        raise PromptError(f"prompt {name!r} has no version {version!r} in the working tree or git history")

    # ------------------------------------------------------------------ labels
    def labels(self) -> dict[str, dict[str, Target]]:
        return _parse_labels(self._labels_text(None))

    def resolve(self, name: str, label: str = "production", key: str | None = None) -> PromptFile:
        """The version ``label`` gives ``key`` (an unknown label is an error naming the known ones)."""
        targets = self.labels().get(name, {})
        if label not in targets:
            raise PromptError(f"prompt {name!r} has no label {label!r} (labels: {', '.join(sorted(targets)) or 'none'})")
        return self.version(name, pick(targets[label], key))

    def set_label(self, name: str, label: str, target: Target) -> None:
        """Point ``label`` at ``target`` in labels.yaml (the file keeps its other entries)."""
        labels = self.labels()
        labels.setdefault(name, {})[label] = target
        (self.root / LABELS_FILE).write_text(yaml.safe_dump(labels, sort_keys=True), encoding="utf-8")

    def previous_target(self, name: str, label: str) -> Target:
        """What ``label`` pointed at before its current value: the newest older value in history."""
        current = self.labels().get(name, {}).get(label)
        if current is None:
            raise PromptError(f"prompt {name!r} has no label {label!r} to roll back")
        for commit in self._log(self.root / LABELS_FILE):
            older = _parse_labels(self._labels_text(commit.sha)).get(name, {}).get(label)
            if older is not None and older != current:
                return older
        raise PromptError(f"label {label!r} of {name!r} has no earlier value in the history of {LABELS_FILE}")

    # ------------------------------------------------------------------ git
    def _git(self, *args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            return None
        return proc.stdout if proc.returncode == 0 else None

    def _log(self, path: Path) -> list[Commit]:
        out = self._git("log", "--follow", "--format=%H%x1f%an%x1f%aI%x1f%s", "--", path.name)
        commits = []
        for line in (out or "").splitlines():
            sha, author, date, subject = (line.split("\x1f") + ["", "", "", ""])[:4]
            commits.append(Commit(sha, author, date, subject))
        return commits

    def _show(self, sha: str, path: Path) -> str | None:
        prefix = self._git("rev-parse", "--show-prefix")
        return self._git("show", f"{sha}:{(prefix or '').strip()}{path.name}")

    def _labels_text(self, sha: str | None) -> str:
        if sha is None:
            path = self.root / LABELS_FILE
            return path.read_text(encoding="utf-8") if path.is_file() else ""
        return self._show(sha, self.root / LABELS_FILE) or ""


def _parse_labels(text: str) -> dict[str, dict[str, Target]]:
    data: Any = load_yaml(text, LABELS_FILE) if text.strip() else {}
    if not isinstance(data, Mapping):
        raise PromptError(f"{LABELS_FILE} must map prompt names to their labels")
    out: dict[str, dict[str, Target]] = {}
    for name, labels in data.items():
        if not isinstance(labels, Mapping):
            raise PromptError(f"{LABELS_FILE}: {name!r} must map labels to versions")
        out[str(name)] = {str(label): ({str(v): int(w) for v, w in target.items()} if isinstance(target, Mapping) else str(target))
                          for label, target in labels.items()}
    return out
