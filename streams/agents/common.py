"""The loop every detector agent shares: take a batch, decode, detect, publish, store."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import faust

from streams.agents.acks import ack_all
from streams.kafka.send_retry import send_all
from streams.pipeline.detection import DETECTION_COLUMNS, DetectionOutput, DetectionRunner, Positioned
from streams.pipeline.evaluations import encode_evaluations
from streams.worker.services import Services

log = logging.getLogger(__name__)


def register_detection_agent(
    app: faust.App,
    services: Services,
    name: str,
    build_runner: Callable[[], DetectionRunner],
    after_batch: Callable[[DetectionRunner, DetectionOutput, list[Positioned]], Any] | None = None,
    build_at_start: bool = True,
    before_batch: Callable[[DetectionRunner, list[Positioned]], Any] | None = None,
) -> None:
    """An agent named ``name`` on the calls topic running ``build_runner()``'s detectors.

    The runner is built on the detector thread when the worker starts (``build_at_start``; loading
    the model and the attack index takes seconds, which would otherwise delay the first events),
    or on first use when building needs restored state (drift's checkpoints).
    ``before_batch(runner, batch)`` may return a subset of the batch to run (drift skips events
    its restored state already holds).
    Verdicts are published to the results topic (and, with ``LLMWATCH_EVALUATIONS_TOPIC``, as OTel
    ``gen_ai.evaluation.result`` log records) and stored in ``detections``; the batch is acked
    only when both are done (``noack_take``, acked by hand), so a crash or a SIGTERM replays it
    and the replay guard drops rows that were already stored.
    """
    s = services.settings
    calls = app.topic(s.calls_topic, value_type=bytes, key_type=bytes, partitions=s.topic_partitions)
    results = app.topic(s.results_topic, value_type=bytes, key_type=bytes) if s.results_topic else None
    evaluations = app.topic(s.evaluations_topic, value_type=bytes, key_type=bytes) if s.evaluations_topic else None
    state: dict[str, Any] = {}

    async def get_runner() -> DetectionRunner:
        # One build even when the start-up task and the first batch both ask for it.
        if "runner" not in state:
            state["runner"] = asyncio.ensure_future(services.detect(_build_warm, build_runner))
        return await state["runner"]

    if build_at_start:
        services.loading.add(name)  # /healthz says "starting" until this is done

        async def build_runner_at_start() -> None:
            await services.ready.wait()
            await get_runner()
            services.loading.discard(name)
            log.info("%s: detectors loaded", name)

        build_runner_at_start.__name__ = build_runner_at_start.__qualname__ = f"{name}_load"
        app.task(build_runner_at_start)

    async def detect(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(s.detect_batch_size, within=s.detect_within_s):
            await services.ready.wait()
            runner = await get_runner()
            if "sink" not in state and s.needs_clickhouse:
                state["sink"] = services.sink("detections", DETECTION_COLUMNS, replay_key=("detector",))
            batch = await services.retry_while_registry_down(services.decode_valid, events)
            if before_batch is not None:
                batch = await before_batch(runner, batch)
            out, elapsed = await services.detect(_timed_run, runner, batch)
            services.metrics.events.labels(name).inc(len(events))
            if batch:
                services.metrics.detector_seconds.labels(name).observe(elapsed)
                services.metrics.detector_event_seconds.labels(name).observe(elapsed / len(batch))
            for _, detector_name, _ in out.errors:
                services.metrics.detector_errors.labels(detector_name).inc()
            for _, verdict in out.verdicts:
                services.metrics.detections.labels(verdict.detector, str(bool(verdict.flagged)).lower()).inc()
            if s.needs_clickhouse:  # detect workers: the store process writes what they publish
                await services.write(state["sink"], out.rows)
            if results is not None and out.results:
                await send_all(lambda kv: results.send(key=kv[0], value=kv[1]), out.results, what="verdict")
            if evaluations is not None and out.judged:
                # off the detector thread, the pipeline's busiest
                message = await asyncio.get_running_loop().run_in_executor(
                    services.decode_thread, encode_evaluations, out.judged, services.redactor)
                await send_all(lambda v: evaluations.send(value=v), [message], what="OTel evaluation")
            if after_batch is not None:
                await after_batch(runner, out, batch)
            await ack_all(stream, events)

    detect.__name__ = detect.__qualname__ = name
    app.agent(calls, name=name)(detect)


def _timed_run(runner: DetectionRunner, batch: list[Positioned]) -> tuple[DetectionOutput, float]:
    """``runner.run(batch)`` and its duration, timed on the detector thread: the agents share
    that thread, so timing the ``await`` would add the time spent queued behind other agents."""
    started = time.perf_counter()
    out = runner.run(batch)
    return out, time.perf_counter() - started


def _build_warm(build_runner: Callable[[], DetectionRunner]) -> DetectionRunner:
    """Build the runner and run the embedding model once, so the first real batch pays neither."""
    runner = build_runner()
    from detectors.embeddings import default_embedder

    embedder = default_embedder()
    if hasattr(embedder, "embed_token_ids"):  # uncached: leaves no trace in the embedding cache
        chunks = embedder.token_chunks("warm up " * 100) + embedder.token_chunks("hello")
        embedder.embed_token_ids(chunks)
    return runner
