"""Drift agent: per (app, model, prompt version) embedding and scalar drift.

Per-event verdicts are stored only when an alarm is raised; a timer writes ``drift_reports``
every ``LLMWATCH_DRIFT_REPORT_INTERVAL_S`` (not ``on_window_close``, which fires late and without
the window's data). The detector's state is checkpointed into a Faust table (changelog-backed)
on the same cadence, and restored from it when the worker starts.
"""
from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import time
import zlib
from typing import Any

import faust

from streams.agents.common import register_detection_agent
from streams.pipeline.detection import DetectionRunner
from streams.pipeline.runners import drift_detector, drift_runner
from streams.pipeline.drift_reports import DRIFT_REPORT_COLUMNS, DriftReporter
from streams.worker.services import Services

log = logging.getLogger(__name__)


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    checkpoints = app.Table(
        "drift_state",
        partitions=s.topic_partitions,
        # Checkpoints are written from the batch loop, outside per-event iteration: partition by
        # key hash instead of by the current event's partition.
        use_partitioner=True,
        schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="raw", value_serializer="raw"),
        # A checkpoint holds a key's embedding windows (float16): allow large changelog records.
        extra_topic_configs={"max.message.bytes": str(8 * 1024 * 1024)},
    )
    reporter = DriftReporter()
    state: dict[str, Any] = {"last_checkpoint": time.monotonic()}

    def build() -> DetectionRunner:
        detector = drift_detector(s)
        for key, blob in list(checkpoints.items()):
            if blob:
                try:
                    detector.load_state_dict(json.loads(zlib.decompress(blob)))
                except Exception as exc:  # a checkpoint from another detector version: start fresh
                    log.warning("ignoring drift checkpoint for %s: %s", key, exc)
        state["detector"] = detector
        return drift_runner(s, services.redactor, detector)

    async def after_batch(runner: DetectionRunner, out: Any, batch: list) -> None:
        if time.monotonic() - state["last_checkpoint"] < s.drift_report_interval_s:
            return
        state["last_checkpoint"] = time.monotonic()
        detector = state["detector"]
        blobs = await services.detect(_checkpoint_blobs, detector)
        for key, blob in blobs.items():
            checkpoints[key] = blob

    # Built on the first batch: the checkpoint table is restored only once partitions are assigned.
    register_detection_agent(app, services, "detect_drift", build, after_batch, build_at_start=False)

    @app.task
    async def load_drift_code() -> None:
        """Import the detector (river takes ~1.3 s) at start, not while the first batch waits."""
        await services.detect(importlib.import_module, "detectors.drift")

    @app.timer(s.drift_report_interval_s, name="drift_reports")
    async def write_reports() -> None:
        detector = state.get("detector")
        if detector is None or not services.ready.is_set():
            return
        if "sink" not in state:
            state["sink"] = services.sink("drift_reports", DRIFT_REPORT_COLUMNS, replay_key=None)
        now = dt.datetime.now(dt.timezone.utc)
        rows = await services.detect(reporter.rows, detector, now)
        await services.write(state["sink"], rows)
        for row in rows:
            services.metrics.drift_reports.labels(str(bool(row[5])).lower()).inc()


def _checkpoint_blobs(detector: Any) -> dict[str, bytes]:
    return {"|".join(key): zlib.compress(json.dumps(detector.state_dict(key)).encode(), 1) for key in detector.keys()}
