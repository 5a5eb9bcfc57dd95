"""Quality of every answer: refusal, relevance, truncation, degenerate output, format, language, PII.

* :class:`QualityDetector` -- every check on every call with a response (see its docstring).
* :class:`RefusalDetector` -- refusal alone; ``llmwatch eval refusal`` measures it.

>>> from detectors.quality import CHECKS, QualityDetector, RefusalDetector
>>> QualityDetector.name, RefusalDetector.name, CHECKS[0]
('quality', 'refusal', 'refusal')
"""
from __future__ import annotations

from .detector import CHECKS, QualityDetector, RefusalDetector, otel_results

__all__ = ["CHECKS", "QualityDetector", "RefusalDetector", "otel_results"]
