"""Injection agent: layered prompt-injection check on prompts and retrieved passages, plus canary leaks."""
from __future__ import annotations

import faust

from streams.agents.common import register_detection_agent
from streams.detection import DetectionRunner
from streams.services import Services


def register(app: faust.App, services: Services) -> None:
    s = services.settings

    def build() -> DetectionRunner:
        from detectors.injection import CanaryDetector, InjectionDetector

        detectors = [InjectionDetector(cascade=bool(s.cascade), scan_context=True)]
        canaries = s.canary_tokens()
        if canaries:
            detectors.append(CanaryDetector(canaries))
        return DetectionRunner(
            detectors, s.calls_topic, services.redactor, sample_rates={"injection": s.sample_injection}
        )

    register_detection_agent(app, services, "detect_injection", build)
