"""The detector contract every llmwatch detector follows.

A detector is configured once in its constructor (validated, ``ValueError`` naming the bad
value), fed events with :meth:`Detector.detect` (or :meth:`Detector.detect_batch` for
throughput) and answers with a frozen, typed :class:`Verdict`. Detectors are pure: they never
import Kafka, Faust or ClickHouse, so the stream worker and ``llmwatch eval`` run the same code.

>>> from detectors.base import Event
>>> Event(prompt="hi").prompt
'hi'
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Event:
    """What a detector sees of one LLM call (a projection of the Avro ``LLMCall`` event)."""

    prompt: str = ""
    response: str | None = None
    context: tuple[str, ...] | None = None
    system: str | None = None
    event_id: str = ""
    app: str = ""
    model: str = ""
    prompt_version: str = ""
    timestamp_ms: int = 0
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    status: str = "ok"
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def stream_key(self) -> tuple[str, str, str]:
        """The key drift and rate statistics are kept per: (app, model, prompt version)."""
        return (self.app, self.model, self.prompt_version)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One detector's answer about one event. ``score`` is in [0, 1]; higher means worse."""

    detector: str
    version: str
    score: float
    flagged: bool
    threshold: float
    evidence: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""  # short machine-readable outcome, e.g. "heuristic", "no_context"

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0) or self.score != self.score:
            raise ValueError(f"Verdict.score must be in [0, 1], got {self.score!r}")


class Detector:
    """Base class: subclasses set ``name``/``version`` and implement :meth:`detect`.

    Mutable state lives only in attributes built by :meth:`_reset`, so ``clone()`` gives a
    fresh detector with the same configuration and pickling round-trips.
    """

    name: ClassVar[str] = "detector"
    version: ClassVar[str] = "0"

    def _reset(self) -> None:
        """Build mutable state. Stateless detectors keep the default no-op."""

    def detect(self, event: Event) -> Verdict:
        raise NotImplementedError

    def detect_batch(self, events: Sequence[Event]) -> list[Verdict]:
        """Detect many events; subclasses override it to batch embedding calls."""
        return [self.detect(e) for e in events]

    def _params(self) -> dict[str, Any]:
        """Constructor parameters, read back from attributes of the same name."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def clone(self) -> "Detector":
        """A new detector with the same configuration and fresh state."""
        return type(self)(**copy.deepcopy(self._params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items() if not _is_heavy(v))
        return f"{type(self).__name__}({args})"


def _is_heavy(value: Any) -> bool:
    return hasattr(value, "encode") and hasattr(value, "dim")


def check_probability(name: str, value: float) -> float:
    """Validate a constructor argument that must lie in [0, 1]."""
    if not isinstance(value, (int, float)) or not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_positive_int(name: str, value: int) -> int:
    """Validate a constructor argument that must be a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: add a detector to the registry the contract tests loop over."""
    REGISTRY[cls.name] = cls
    return cls
