"""One quality evaluation's outcome, shaped like an OpenTelemetry GenAI evaluation result.

OTel's ``gen_ai.evaluation.result`` event carries ``gen_ai.evaluation.name``,
``gen_ai.evaluation.score.value``, ``gen_ai.evaluation.score.label`` and
``gen_ai.evaluation.explanation``; :meth:`EvalResult.otel` gives exactly those attributes.

>>> r = EvalResult("truncation", 1.0, "finish_reason_length", "finish_reason is 'length'", True, 1.0)
>>> r.otel()["gen_ai.evaluation.score.label"], r.evidence()["flagged"]
('finish_reason_length', True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EvalResult:
    """``value`` is the metric in its natural direction (a refusal probability, a cosine); ``badness``
    is in [0, 1], higher is worse, 0.5 at the check's own flagging point."""

    name: str
    value: float
    label: str
    explanation: str
    flagged: bool
    badness: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or not (0.0 <= self.badness <= 1.0):
            raise ValueError(f"{self.name}: value must be finite and badness in [0, 1], got {self.value!r}, {self.badness!r}")

    def evidence(self) -> dict[str, Any]:
        """The JSON stored in the verdict's evidence under ``evaluations[name]``."""
        return {"score": round(float(self.value), 4), "label": self.label, "explanation": self.explanation,
                "flagged": self.flagged}

    def otel(self) -> dict[str, Any]:
        """The attributes of one OTel ``gen_ai.evaluation.result`` event."""
        return {"gen_ai.evaluation.name": self.name, "gen_ai.evaluation.score.value": round(float(self.value), 4),
                "gen_ai.evaluation.score.label": self.label, "gen_ai.evaluation.explanation": self.explanation}


def ok(name: str, label: str, explanation: str, value: float = 0.0) -> EvalResult:
    """A passing result (badness 0)."""
    return EvalResult(name, value, label, explanation, False, 0.0)
