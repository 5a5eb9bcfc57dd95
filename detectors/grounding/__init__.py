"""Grounding / hallucination detection: is the response supported by the retrieved context?

>>> from detectors.grounding import GroundingDetector, LengthBaseline
>>> GroundingDetector.name, LengthBaseline.name
('grounding', 'grounding_length_baseline')
"""
from .detector import GroundingDetector, LengthBaseline
from .judge import JudgeResult, LLMJudge

__all__ = ["GroundingDetector", "LengthBaseline", "LLMJudge", "JudgeResult"]
