"""Prompt versions from the compacted ``llm.prompts`` topic -> ``prompt_versions``.

``llmwatch prompts publish`` (run in the app's CI after a merge) writes every version and the
labels there; this stores the versions, committed after the insert like every other path.
"""
from __future__ import annotations

import faust

from streams.agents.batching import register_consumers
from streams.agents.store import store_loop
from streams.kafka.batch_consumer import BatchConsumer
from streams.pipeline.prompt_messages import PROMPT_VERSION_COLUMNS, prompt_version_rows
from streams.worker.services import Services


def register(app: faust.App, services: Services) -> None:
    """The prompts agent, unless ``LLMWATCH_PROMPTS_TOPIC`` is empty."""
    s = services.settings
    if not s.prompts_topic:
        return
    dead_letters = app.topic(s.dead_letter_topic, value_type=bytes, key_type=bytes, partitions=1)
    send_dead = lambda d: dead_letters.send(key=d.key, value=d.value, headers=d.headers())  # noqa: E731
    register_consumers(
        app, services,
        lambda: [BatchConsumer(s.kafka_bootstrap, s.prompts_topic, f"{s.consumer_group}-prompts", s.batch_size)],
        lambda consumer: store_loop(consumer, services, send_dead, "prompt_versions", PROMPT_VERSION_COLUMNS, None,
                                    lambda messages: prompt_version_rows(messages, s.prompts_topic)),
    )
