"""The topics llmwatch uses, created up front with the partition counts the settings ask for."""
from __future__ import annotations

from streams.config import Settings


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Topic name -> partitions."""
    topics = {settings.calls_topic: settings.topic_partitions, settings.dead_letter_topic: 1}
    for topic in filter(None, (*(t.strip() for t in settings.otlp_topics.split(",")), settings.otlp_logs_topic)):
        topics.setdefault(topic, settings.topic_partitions)  # the Collector's kafkaexporter writes here
    if settings.prompts_topic:  # compacted (topic_configs): every version and each prompt's labels
        topics[settings.prompts_topic] = 1
    if settings.evaluations_topic:  # read by a Collector's kafkareceiver
        topics[settings.evaluations_topic] = settings.topic_partitions
    if settings.results_topic:
        topics[settings.results_topic] = settings.topic_partitions
    if settings.role in ("detect", "store"):  # drift reports cross Kafka only between roles
        topics[settings.drift_reports_topic] = 1
    return topics


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Topic name -> configs to create it with."""
    return {settings.prompts_topic: {"cleanup.policy": "compact"}} if settings.prompts_topic else {}


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> None:
    """Create missing topics (existing ones are left as they are)."""
    from streams.devtools.kafka_local import create_topics

    create_topics(settings.kafka_bootstrap, topic_partitions(settings), timeout=timeout_s, configs=topic_configs(settings))
