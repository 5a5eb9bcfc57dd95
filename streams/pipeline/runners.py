"""The detector groups each agent runs, built from settings in one place.

The agents and the tests that compare stored detections with a pure run both build their
runners here, so they cannot drift apart.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from streams.config import Settings
from streams.pipeline.detection import DetectionRunner
from streams.pipeline.redaction import Redactor

if TYPE_CHECKING:
    from detectors.injection import InjectionDetector


def injection_detector(settings: Settings) -> "InjectionDetector":
    """The injection detector exactly as the worker runs it: prompt and every context passage.

    ``llmwatch eval injection`` builds it here too, so the eval scores a row as the worker
    scores a call.
    """
    from detectors.injection import InjectionDetector

    return InjectionDetector(cascade=bool(settings.cascade), scan_context=True, allowlist=settings.injection_allowlist())


def injection_runner(settings: Settings, redactor: Redactor) -> DetectionRunner:
    from detectors.injection import CanaryDetector

    detectors = [injection_detector(settings)]
    canaries = settings.canary_tokens()
    if canaries:
        detectors.append(CanaryDetector(canaries))
    return DetectionRunner(detectors, settings.calls_topic, redactor, sample_rates={"injection": settings.sample_injection})


def grounding_runner(settings: Settings, redactor: Redactor) -> DetectionRunner:
    from detectors.grounding import GroundingDetector

    return DetectionRunner(
        [GroundingDetector()],
        settings.calls_topic,
        redactor,
        sample_rates={"grounding": settings.sample_grounding},
        # A call without passages or without an answer has nothing to ground: not stored.
        applies={"grounding": lambda e: bool(e.context) and bool(e.response)},
    )


def quality_runner(settings: Settings, redactor: Redactor) -> DetectionRunner:
    """Every call with an answer: refusal, relevance, truncation, degenerate output, format,
    language and PII, in one verdict whose evidence holds each check (``quality_scores`` splits them)."""
    from detectors.quality import QualityDetector

    return DetectionRunner(
        [QualityDetector()],
        settings.calls_topic,
        redactor,
        sample_rates={"quality": settings.sample_quality},
        applies={"quality": lambda e: e.response is not None},
    )


def drift_detector(settings: Settings):
    from detectors.drift import DriftDetector

    return DriftDetector(reference_size=settings.drift_reference_size, window_size=settings.drift_window_size)


def drift_runner(settings: Settings, redactor: Redactor, detector=None) -> DetectionRunner:
    """Per-event drift verdicts are kept only when an alarm is raised."""
    return DetectionRunner(
        [detector if detector is not None else drift_detector(settings)],
        settings.calls_topic,
        redactor,
        sample_rates={"drift": settings.sample_drift},
        flagged_only=["drift"],
    )
