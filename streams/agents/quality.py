"""Quality agent: every answer scored for refusal, relevance, truncation, degenerate output,
format, language and PII (:class:`detectors.quality.QualityDetector`)."""
from __future__ import annotations

import faust

from streams.agents.common import register_detection_agent
from streams.pipeline.runners import quality_runner
from streams.worker.services import Services


def register(app: faust.App, services: Services) -> None:
    register_detection_agent(
        app, services, "detect_quality", lambda: quality_runner(services.settings, services.redactor)
    )
