"""The topics llmwatch uses, created up front with the partition counts the settings ask for."""
from __future__ import annotations

from streams.config import Settings


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Topic name -> partitions."""
    topics = {settings.calls_topic: settings.topic_partitions, settings.dead_letter_topic: 1}
    for topic in filter(None, (*(t.strip() for t in settings.otlp_topics.split(",")), settings.otlp_logs_topic)):
        topics.setdefault(topic, settings.topic_partitions)  # the Collector's kafkaexporter writes here
    if settings.evaluations_topic:  # read by a Collector's kafkareceiver
        topics[settings.evaluations_topic] = settings.topic_partitions
    if settings.results_topic:
        topics[settings.results_topic] = settings.topic_partitions
    if settings.role in ("detect", "store"):  # drift reports cross Kafka only between roles
        topics[settings.drift_reports_topic] = 1
    return topics


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> None:
    """Create missing topics (existing ones are left as they are)."""
    from streams.devtools.kafka_local import create_topics

    create_topics(settings.kafka_bootstrap, topic_partitions(settings), timeout=timeout_s)
