"""Drift agent: per (app, model, prompt version) embedding and scalar drift.

Per-event verdicts are stored only when an alarm is raised; a timer reports every
``LLMWATCH_DRIFT_REPORT_INTERVAL_S`` (not ``on_window_close``, which fires late and without
the window's data): into ``drift_reports``, or onto the drift-reports topic from a detect worker.

State moves with the partitions (see :mod:`streams.pipeline.drift_state`): each batch
checkpoints the apps it touched into a changelog-backed table keyed by app, and when the
worker's partitions change the detector is rebuilt from the checkpoints of the apps it now owns.
"""
from __future__ import annotations

import datetime as dt
import importlib
import logging
from typing import Any

import faust

from streams.agents.common import register_detection_agent
from streams.kafka.send_retry import send_all
from streams.pipeline import drift_state
from streams.pipeline.detection import DetectionRunner, Positioned
from streams.pipeline.drift_reports import DRIFT_REPORT_COLUMNS, DriftReporter
from streams.pipeline.runners import drift_detector, drift_runner
from streams.pipeline.verdicts import drift_report_message
from streams.worker.services import Services

log = logging.getLogger(__name__)


def checkpoint_table(app: faust.App, partitions: int) -> Any:
    """The changelog-backed table of drift checkpoints, keyed by app name (UTF-8 bytes).

    The key is sent raw so the producer's murmur2 hash puts an app's checkpoint in the changelog
    partition numbered like the calls partition of the app (``drift_state.app_partition``): the
    worker assigned those calls recovers exactly the checkpoints it needs. (A ``str`` key would
    be JSON-encoded, quotes included, and hash to another partition.)
    """
    return app.Table(
        # A new name: "drift_checkpoints" had JSON keys, in partitions no owner recovered.
        "drift_app_state",
        partitions=partitions,
        use_partitioner=True,
        key_type=bytes,
        value_type=str,
        # A checkpoint holds an app's embedding windows (float16, base64): allow large records.
        extra_topic_configs={"max.message.bytes": str(8 * 1024 * 1024)},
    )


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    checkpoints = checkpoint_table(app, s.topic_partitions)
    reports_topic = app.topic(s.drift_reports_topic, value_type=bytes, key_type=bytes) if not s.needs_clickhouse else None
    # "in_batch" is set from a batch's start to its checkpoint. The report timer writes no
    # checkpoint meanwhile: the detector may already hold the batch while ``covered`` does not (a
    # new owner would fold those events twice); the batch's own checkpoint carries the report.
    state: dict[str, Any] = {"ownership": None, "reporter": DriftReporter(), "in_batch": False}

    def owned_partitions() -> frozenset[int]:
        return frozenset(tp.partition for tp in app.consumer.assignment() if tp.topic == s.calls_topic)

    def rebuild(partitions: frozenset[int]) -> Any:
        detector, reporter = drift_detector(s), DriftReporter()
        saved = [(app_name.decode(), blob) for app_name, blob in checkpoints.items()]
        ownership, broken = drift_state.rebuild(detector, reporter, saved, partitions, s.topic_partitions)
        for name in broken:
            log.warning("ignoring the drift checkpoint of %s (another detector version?)", name)
        state.update(detector=detector, reporter=reporter, ownership=ownership)
        log.info("drift: partitions %s, %d keys restored", sorted(partitions), len(detector.keys()))
        return detector

    def build() -> DetectionRunner:
        return drift_runner(s, services.redactor, rebuild(owned_partitions()))

    async def before_batch(runner: DetectionRunner, batch: list[Positioned]) -> list[Positioned]:
        partitions = owned_partitions()
        state["in_batch"] = True
        if partitions != state["ownership"].partitions:  # a rebalance: take over what moved here
            runner.detectors[0] = await services.detect(rebuild, partitions)
        ownership = state["ownership"]
        # Events of a partition already given away (buffered before the rebalance) are the new
        # owner's: folding them here would write a checkpoint that is not a continuation of its state.
        return [p for p in batch if p.partition in ownership.partitions and ownership.fresh(p.record["service_name"], p.offset)]

    async def after_batch(runner: DetectionRunner, out: Any, batch: list[Positioned]) -> None:
        last: dict[str, int] = {}
        for p in batch:
            last[p.record["service_name"]] = max(p.offset, last.get(p.record["service_name"], -1))
        state["ownership"].covered.update(last)
        await checkpoint(last)
        state["in_batch"] = False

    async def checkpoint(apps: dict[str, int]) -> None:
        detector, reporter = state["detector"], state["reporter"]
        blobs = await services.detect(lambda: {a: drift_state.checkpoint_blob(detector, reporter, a, o) for a, o in apps.items()})
        for name, blob in blobs.items():
            checkpoints[name.encode()] = blob

    def reportable_keys() -> list[drift_state.Key]:
        """Keys of the partitions this worker holds both in its detector and in the group now."""
        held = state["ownership"].partitions & owned_partitions()
        return [k for k in state["detector"].keys() if drift_state.app_partition(k[0], s.topic_partitions) in held]

    # Built on the first batch: the checkpoint table is restored only once partitions are assigned.
    register_detection_agent(
        app, services, "detect_drift", build, after_batch, build_at_start=False, before_batch=before_batch
    )

    @app.task
    async def load_drift_code() -> None:
        """Import the detector (river takes ~1.3 s) at start, not while the first batch waits."""
        await services.detect(importlib.import_module, "detectors.drift")

    @app.timer(s.drift_report_interval_s, name="drift_reports")
    async def write_reports() -> None:
        if state.get("detector") is None or not services.ready.is_set():
            return
        await report(dt.datetime.now(dt.timezone.utc))

    async def report(now: dt.datetime) -> None:
        keys = reportable_keys()
        rows = await services.detect(state["reporter"].rows, state["detector"], now, keys)
        if reports_topic is not None:
            await send_all(lambda row: reports_topic.send(key=row[1].encode(), value=drift_report_message(row)), rows, what="drift report")
        else:
            if "sink" not in state:
                state["sink"] = services.sink("drift_reports", DRIFT_REPORT_COLUMNS, replay_key=None)
            await services.write(state["sink"], rows)
        # What was reported travels with the state, so the next owner does not report it again.
        if not state["in_batch"]:
            covered = state["ownership"].covered
            await checkpoint({key[0]: covered.get(key[0], -1) for key in keys})
        for row in rows:
            services.metrics.drift_reports.labels(str(bool(row[5])).lower()).inc()
