"""Prompts kept in git: ``prompts/<name>.prompt`` files and ``prompts/labels.yaml``.

Every version ever committed can be loaded by its hash: the working tree's file, then each commit
that touched it (``git log`` / ``git show``). ``labels.yaml`` maps each prompt's labels to a
version, or to a weighted split for an A/B test::

    support_agent:
      production: 3f2a9c1b7e
      staging: {3f2a9c1b7e: 90, 8d01e4aa52: 10}

An arm is chosen deterministically from a key the caller passes (a user or session id), so one
user keeps one arm. ``rollback`` moves a label to the value it had before its current one, read
from ``labels.log.jsonl`` (every move ``label`` and ``rollback`` made), else from the history of
``labels.yaml`` (the working tree first, then its commits).

>>> pick({"a": 90, "b": 10}, "user-1") == pick({"a": 90, "b": 10}, "user-1")
True
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from streams.client.prompt_files import PromptError, PromptFile, load_yaml

LABELS_FILE = "labels.yaml"
#: Every label move ``set_label`` makes, one JSON line each (commit it with labels.yaml): rollback
#: reads the value a label had before from here, then from the history of labels.yaml.
LABEL_LOG = "labels.log.jsonl"
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

    def versions(self, name: str) -> list[tuple[PromptFile, Commit | None]]:
        """Every distinct version of ``name``, oldest first; the working tree's, if uncommitted, last
        (with no commit)."""
        seen: dict[str, tuple[PromptFile, Commit | None]] = {}
        for commit, prompt in reversed(list(self.history(name))):
            seen.setdefault(prompt.version, (prompt, commit))
        if self.path(name).is_file():
            current = self.current(name)
            seen.setdefault(current.version, (current, None))
        return list(seen.values())

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
        """Point ``label`` at ``target`` in labels.yaml (the file keeps its other entries) and log the move."""
        labels = self.labels()
        before = labels.setdefault(name, {}).get(label)
        labels[name][label] = target
        (self.root / LABELS_FILE).write_text(yaml.safe_dump(labels, sort_keys=True), encoding="utf-8")
        move = {"name": name, "label": label, "from": before, "to": target, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with open(self.root / LABEL_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(move, sort_keys=True) + "\n")

    def previous_target(self, name: str, label: str) -> Target:
        """What ``label`` pointed at before its current value: the newest older value in history."""
        current = self.labels().get(name, {}).get(label)
        if current is None:
            raise PromptError(f"prompt {name!r} has no label {label!r} to roll back")
        for move in reversed(self._moves()):
            if (move.get("name"), move.get("label"), move.get("to")) == (name, label, current) and move.get("from") is not None:
                return move["from"]
        for commit in self._log(self.root / LABELS_FILE):
            older = _parse_labels(self._labels_text(commit.sha)).get(name, {}).get(label)
            if older is not None and older != current:
                return older
        raise PromptError(f"label {label!r} of {name!r} has no earlier value in the history of {LABELS_FILE}")

    def _moves(self) -> list[dict[str, Any]]:
        path = self.root / LABEL_LOG
        if not path.is_file():
            return []
        moves = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                moves.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a hand-edited line: the git history still answers
        return moves

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


def labels_of(version: str, targets: Mapping[str, Target]) -> list[str]:
    """The labels pointing at ``version``: ``production``, or ``staging:10`` for an arm of a split.

    >>> labels_of("a1", {"production": "a1", "staging": {"a1": 90, "b2": 10}, "canary": "b2"})
    ['production', 'staging:90']
    """
    out = []
    for label, target in sorted(targets.items()):
        if target == version:
            out.append(label)
        elif isinstance(target, Mapping) and version in target:
            out.append(f"{label}:{target[version]}")
    return out


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
