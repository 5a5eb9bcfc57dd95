"""Injection agent: layered prompt-injection check on prompts and retrieved passages, plus canary leaks."""
from __future__ import annotations

import faust

from streams.agents.common import register_detection_agent
from streams.pipeline.runners import injection_runner
from streams.worker.services import Services


def register(app: faust.App, services: Services) -> None:
    register_detection_agent(
        app, services, "detect_injection", lambda: injection_runner(services.settings, services.redactor)
    )
