"""The loop every detector agent shares: take a batch, decode, detect, publish, store."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import faust

from streams.detection import DETECTION_COLUMNS, DetectionOutput, DetectionRunner, Positioned
from streams.services import Services

log = logging.getLogger(__name__)


def register_detection_agent(
    app: faust.App,
    services: Services,
    name: str,
    build_runner: Callable[[], DetectionRunner],
    after_batch: Callable[[DetectionRunner, DetectionOutput, list[Positioned]], Any] | None = None,
) -> None:
    """An agent named ``name`` on the calls topic running ``build_runner()``'s detectors.

    The runner is built on the detector thread on first use (loading the model takes seconds).
    Verdicts are published to the results topic and stored in ``detections``; Faust acks the
    batch only when both are done, so a crash replays it and the replay guard drops rows that
    were already stored.
    """
    s = services.settings
    calls = app.topic(s.calls_topic, value_type=bytes, key_type=bytes, partitions=s.topic_partitions)
    results = app.topic(s.results_topic, value_type=bytes, key_type=bytes) if s.results_topic else None
    state: dict[str, Any] = {}

    async def detect(stream: faust.StreamT) -> None:
        async for events in stream.take_events(s.detect_batch_size, within=s.batch_within_s):
            await services.ready.wait()
            if "runner" not in state:
                state["runner"] = await services.detect(build_runner)
                state["sink"] = services.sink("detections", DETECTION_COLUMNS, replay_key=("detector",))
            runner: DetectionRunner = state["runner"]
            batch = await services.retry_while_registry_down(services.decode_valid, events)
            started = time.perf_counter()
            out = await services.detect(runner.run, batch)
            elapsed = time.perf_counter() - started
            services.metrics.events.labels(name).inc(len(events))
            if batch:
                services.metrics.detector_seconds.labels(name).observe(elapsed)
                services.metrics.detector_event_seconds.labels(name).observe(elapsed / len(batch))
            for _, detector_name, _ in out.errors:
                services.metrics.detector_errors.labels(detector_name).inc()
            for _, verdict in out.verdicts:
                services.metrics.detections.labels(verdict.detector, str(bool(verdict.flagged)).lower()).inc()
            deliveries = [await results.send(key=k, value=v) for k, v in out.results] if results is not None else []
            await services.write(state["sink"], out.rows)
            if deliveries:
                await asyncio.gather(*deliveries)
            if after_batch is not None:
                await after_batch(runner, out, batch)

    detect.__name__ = detect.__qualname__ = name
    app.agent(calls, name=name)(detect)
