"""Generated traffic that renders its prompts from a ``prompts/`` registry, as an app would.

The demo's apps load their system prompt by label, per session (so an A/B split gives each
conversation one arm), and their events carry the version and label. ``rollout_after`` replays
a label move: until that many events, a label serves what it pointed at *before* its current
value (``llmwatch prompts rollback`` would restore that); after, its current value. A version
whose front matter says ``metadata: {demo: {refusal_rate: 0.4}}`` makes the simulated model
refuse that share of answers, so a worse version shows up in the quality checks and in the
rollout-regression alert.
"""
from __future__ import annotations

import random
from typing import Any

from streams.client.prompt_files import PromptError
from streams.client.prompts import Prompt, PromptClient

LABEL = "production"
REFUSALS = (
    "I'm sorry, but I can only help with questions about shipping and delivery.",
    "I can't help with that. Please contact our billing team instead.",
    "Unfortunately I am not able to assist with this request.",
)


class PromptTraffic:
    """Which prompt version each generated call used, and how that version behaves."""

    def __init__(self, client: PromptClient, rollout_after: int | None, seed: int) -> None:
        self.client = client
        self.rollout_after = rollout_after
        self._rng = random.Random(f"{seed}-prompts")  # apart from the generator's, so its stream is unchanged
        self._before: dict[str, Any] = {}
        self._system: dict[str, str] = {}

    def load(self, name: str, key: str, count: int) -> Prompt | None:
        """The prompt ``LABEL`` gives session ``key`` at event ``count`` (None: not in the registry)."""
        try:
            if self.rollout_after is not None and count <= self.rollout_after:
                before = self._previous(name)
                if before is not None:
                    from streams.client.prompt_registry import pick

                    return Prompt(self.client.load(name, version=pick(before, key)).file, LABEL)
            return self.client.load(name, label=LABEL, key=key)
        except PromptError:
            return None

    def _previous(self, name: str) -> Any:
        if name not in self._before:
            try:
                self._before[name] = self.client.registry.previous_target(name, LABEL)
            except PromptError:
                self._before[name] = None  # the label never moved: no rollout to replay
        return self._before[name]

    def system_text(self, prompt: Prompt) -> str:
        """The system message of ``prompt``, rendered once per version with placeholder inputs."""
        if prompt.version not in self._system:
            schema = (prompt.file.front.get("input") or {}).get("schema") or {}
            values: dict[str, Any] = {}
            for key in schema:
                name = str(key).split("(", 1)[0].rstrip("?").strip()
                values[name] = [f"<{name}>"] if "(array" in str(key) else f"<{name}>"
            messages = prompt.file.render(values)
            self._system[prompt.version] = next((m.text for m in messages if m.role == "system"), "")
        return self._system[prompt.version]

    @staticmethod
    def refusal(count: int) -> str:
        """The simulated refusal for the ``count``-th call."""
        return REFUSALS[count % len(REFUSALS)]

    def refuses(self, prompt: Prompt) -> bool:
        """Whether the simulated model refuses this answer (the version's ``demo.refusal_rate``)."""
        demo = ((prompt.file.front.get("metadata") or {}).get("demo") or {})
        rate = float(demo.get("refusal_rate", 0.0))
        return rate > 0 and self._rng.random() < rate
