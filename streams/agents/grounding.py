"""Grounding agent: is each answer supported by the passages it was given? (RAG calls only.)"""
from __future__ import annotations

import faust

from streams.agents.common import register_detection_agent
from streams.pipeline.runners import grounding_runner
from streams.worker.services import Services


def register(app: faust.App, services: Services) -> None:
    register_detection_agent(
        app, services, "detect_grounding", lambda: grounding_runner(services.settings, services.redactor)
    )
