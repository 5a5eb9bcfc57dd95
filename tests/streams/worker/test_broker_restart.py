"""A broker restart mid-stream: the worker rides it out and stores every event exactly once.

A broker of the test's own (the session's shared one must not go away under other tests) is
stopped while the worker is ingesting, and started again on the same data folder and port;
events produced before, and after, the restart all land, none twice, and the rollups agree.
"""
from __future__ import annotations

import asyncio
import time

from streams.devtools.kafka_local import LocalKafka, free_port
from streams.kafka.topics import ensure_topics
from tests.streams.agents.test_ingest_worker import committed_lag, valid_messages
from tests.streams.worker_harness import WorkerProcess, produce, query, unique_settings

HALF = 3000


def test_a_broker_restart_mid_stream_loses_nothing(tmp_path):
    kafka = LocalKafka(tmp_path / "kafka", port=free_port()).start()
    try:
        settings = unique_settings(kafka.bootstrap, tmp_path / "worker", detectors="", batch_size=200)
        ensure_topics(settings)
        messages = list(valid_messages(2 * HALF))
        asyncio.run(produce(kafka.bootstrap, settings.calls_topic, messages[:HALF]))
        worker = WorkerProcess(settings).start()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # some of the first half stored: the stream is live
                lag = committed_lag(settings)
                if lag is not None and lag < HALF:
                    break
                time.sleep(0.2)
            assert lag is not None and 0 < lag < HALF, f"the restart should land mid-stream (lag {lag})"
            kafka.stop()
            time.sleep(3)  # the worker sees the broker gone: failed fetches, commits and metadata
            worker.check_alive()
            kafka.start()
            asyncio.run(produce(kafka.bootstrap, settings.calls_topic, messages[HALF:]))
            worker.wait_caught_up(timeout=240)
        finally:
            worker.stop()
    finally:
        kafka.stop()
    n = 2 * HALF
    assert query(settings, "SELECT count(), uniqExact(event_id) FROM llm_calls") == [(n, n)]
    assert query(settings, "SELECT sum(calls) FROM llm_calls_1m") == [(n,)]
