"""The prompt SDK apps import beside the producer: load a prompt by label or version, render it,
and stamp the events it produced with its name, version and label.

>>> from streams.client.prompts import PromptClient                      # doctest: +SKIP
>>> prompts = PromptClient("prompts")                                     # doctest: +SKIP
>>> p = prompts.load("support_agent", label="production", key=user_id)    # doctest: +SKIP
>>> messages = p.render(question="Where is my order?")                    # doctest: +SKIP
>>> producer.send(p.stamp({"event_id": ..., "output_text": answer, ...})) # doctest: +SKIP

With ``follow=PromptFollower(bootstrap)`` (started), labels and versions published to the
``llm.prompts`` topic win over the bundled files, so a rollback reaches running apps within
seconds of ``llmwatch prompts publish``. Loaded prompts are cached in the process for ``ttl_s``. When the registry cannot be read (files
gone, a broken labels.yaml, git missing), :meth:`PromptClient.load` never raises into the app if
it served that prompt and label before: it returns the last good version and counts it in
:attr:`PromptClient.fallbacks`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from schemas import PROMPT_LABEL_ATTRIBUTE
from streams.client.prompt_files import Message, PromptError, PromptFile
from streams.client.prompt_follow import PromptFollower
from streams.client.prompt_registry import PromptRegistry, pick

log = logging.getLogger(__name__)
LABEL_ATTRIBUTE = PROMPT_LABEL_ATTRIBUTE


@dataclass(frozen=True)
class Prompt:
    """A loaded prompt: what to render, and what to stamp on the events it produces."""

    file: PromptFile
    label: str  # "" when loaded by version

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def version(self) -> str:
        return self.file.version

    def render(self, **values: Any) -> list[Message]:
        """Chat messages (role, text); a missing variable raises :class:`PromptError` naming it."""
        return self.file.render(values)

    def stamp(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """``event`` with ``prompt_name``, ``prompt_version``, ``prompt_label`` and the label attribute set.

        >>> f = PromptFile.parse("greet", "Hello {{name}}")
        >>> e = Prompt(f, "production").stamp({"event_id": "e1", "attributes": {"team": "a"}})
        >>> (e["prompt_name"], e["prompt_version"] == f.version, e["attributes"])
        ('greet', True, {'team': 'a', 'gen_ai.prompt.label': 'production'})
        """
        attributes = {**(event.get("attributes") or {})}
        if self.label:
            attributes[LABEL_ATTRIBUTE] = self.label
        return {**event, "prompt_name": self.name, "prompt_version": self.version, "prompt_label": self.label,
                "attributes": attributes}


class PromptClient:
    """Loads prompts from a registry folder, with a cache and a last-good fallback."""

    def __init__(self, root: str | Path = "prompts", ttl_s: float = 30.0, follow: PromptFollower | None = None) -> None:
        self.registry = PromptRegistry(root)
        self.follow = follow  # labels and versions published to llm.prompts win over the bundled files
        self.ttl_s = ttl_s
        self.fallbacks: Counter[str] = Counter()  # prompt name -> loads served from the last good version
        self._cache: dict[tuple[str, str, str], tuple[float, PromptFile]] = {}
        self._last_good: dict[tuple[str, str], PromptFile] = {}
        self._lock = threading.Lock()

    def load(self, name: str, label: str = "production", key: str | None = None, version: str | None = None) -> Prompt:
        """``name`` at ``version``, or the version ``label`` gives ``key`` (A/B arms are per key)."""
        wanted = (name, version or f"@{label}", key or "")
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(wanted)
            if hit is not None and now - hit[0] < self.ttl_s:
                return Prompt(hit[1], "" if version else label)
        try:
            found = self._resolve(name, label, key, version)
        except (PromptError, OSError, ValueError) as exc:
            return self._fallback(name, label, version, exc)
        with self._lock:
            self._cache[wanted] = (now, found)
            self._last_good[(name, version or label)] = found
        return Prompt(found, "" if version else label)

    def _resolve(self, name: str, label: str, key: str | None, version: str | None) -> PromptFile:
        live = self.follow
        if version:
            return (live.version(name, version) if live else None) or self.registry.version(name, version)
        target = live.target(name, label) if live else None
        if target is None:
            return self.registry.resolve(name, label, key)
        chosen = pick(target, key)
        return live.version(name, chosen) or self.registry.version(name, chosen)  # type: ignore[union-attr]

    def _fallback(self, name: str, label: str, version: str | None, exc: Exception) -> Prompt:
        with self._lock:
            last = self._last_good.get((name, version or label))
        if last is None:
            raise PromptError(f"prompt {name!r} cannot be loaded and was never loaded before: {exc}") from exc
        self.fallbacks[name] += 1
        log.warning("prompt %s: registry unreadable (%s); serving the last good version %s", name, exc, last.version)
        return Prompt(last, "" if version else label)
