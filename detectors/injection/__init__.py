"""Prompt-injection detection: a layered detector for prompts/context and a canary-leak detector.

* :class:`InjectionDetector` -- heuristics, attack-corpus similarity and an embedding
  classifier, combined into one score (see its docstring).
* :class:`CanaryDetector` -- flags responses that leak a registered canary token.
"""
from __future__ import annotations

from .allowlist import Allowlist
from .canary import CanaryDetector
from .detector import InjectionDetector

__all__ = ["Allowlist", "CanaryDetector", "InjectionDetector"]
