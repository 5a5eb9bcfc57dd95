"""Grounding agent: is each answer supported by the passages it was given? (RAG calls only.)"""
from __future__ import annotations

import faust

from streams.agents.common import register_detection_agent
from streams.detection import DetectionRunner
from streams.services import Services


def register(app: faust.App, services: Services) -> None:
    s = services.settings

    def build() -> DetectionRunner:
        from detectors.grounding import GroundingDetector

        return DetectionRunner(
            [GroundingDetector()],
            s.calls_topic,
            services.redactor,
            sample_rates={"grounding": s.sample_grounding},
            # A call without passages or without an answer has nothing to ground: not stored.
            applies={"grounding": lambda e: bool(e.context) and bool(e.response)},
        )

    register_detection_agent(app, services, "detect_grounding", build)
