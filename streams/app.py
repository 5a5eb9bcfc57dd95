"""Builds the Faust app and nothing else: configuration in, app with its agents out."""
from __future__ import annotations

from pathlib import Path

import faust

from streams.config import Settings


def create_app(settings: Settings) -> faust.App:
    """The llmwatch worker app for these settings, with every agent registered."""
    from streams.agents import ingest

    Path(settings.home).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        datadir=str(Path(settings.home) / "faust"),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A killed worker's partitions move to its replacement after this long.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_every=5000,
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_host="127.0.0.1",
    )
    ingest.register(app, settings)
    return app
