"""Builds the Faust app and nothing else: configuration in, app with its agents out.

Which agents a worker runs is one table, ``AGENTS``: each row names the roles it belongs to and
the setting that switches it off. ``Settings.role`` picks the rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import faust

from streams.config import Settings

if TYPE_CHECKING:  # imported for real inside create_app: the worker's heavy imports wait for it
    from streams.worker.services import Services


@dataclass(frozen=True)
class AgentSpec:
    """One row of the agent table: where ``register(app, services)`` lives and when it runs."""

    module: str  # under streams.agents
    roles: frozenset[str]
    detector: str = ""  # runs only when LLMWATCH_DETECTORS names it ("" = always)

    def wanted(self, settings: Settings) -> bool:
        return settings.role in self.roles and (not self.detector or self.detector in settings.detector_names)


_ALL, _INGEST, _DETECT, _STORE = "all", "ingest", "detect", "store"
AGENTS: tuple[AgentSpec, ...] = (
    AgentSpec("ingest", frozenset({_ALL, _INGEST, _STORE})),
    AgentSpec("otlp", frozenset({_ALL, _INGEST, _STORE})),  # returns at once unless LLMWATCH_OTLP_TOPICS is set
    AgentSpec("injection", frozenset({_ALL, _DETECT}), detector="injection"),
    AgentSpec("grounding", frozenset({_ALL, _DETECT}), detector="grounding"),
    AgentSpec("drift", frozenset({_ALL, _DETECT}), detector="drift"),
    AgentSpec("quality", frozenset({_ALL, _DETECT}), detector="quality"),
    AgentSpec("store", frozenset({_STORE})),
    AgentSpec("prompts", frozenset({_ALL, _STORE})),  # prompt versions -> prompt_versions
    AgentSpec("alerts", frozenset({_ALL, _STORE})),
    AgentSpec("observability", frozenset({_ALL, _INGEST, _DETECT, _STORE})),
)


def create_app(settings: Settings) -> faust.App:
    """The llmwatch worker app for these settings, with the agents of its role registered."""
    import importlib

    from streams.worker.services import Services

    Path(settings.home).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.group_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        # One folder per role: a detect worker and the store process may share a home.
        datadir=str(Path(settings.home) / ("faust" if settings.role == "all" else f"faust-{settings.role}")),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_commit_every=5000,
        # Results and dead letters go out in fewer, larger produce requests (Faust's default is 0;
        # Kafka 4's own clients default to 5 ms). Measured on a warmed worker: the broker's
        # CPU per event fell ~17% (3 alternating pairs of 1,500-event bursts).
        producer_linger=0.01,
        # A killed worker's partitions move to its replacement after this long.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        # Detector batches can take seconds on a busy CPU; don't get kicked out of the group.
        broker_max_poll_interval=300.0,
        # Drift checkpoints carry embedding windows (a few hundred KB per key).
        producer_max_request_size=8 * 1024 * 1024,
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
        # Measured on 2 cores: bigger polls cut Faust's per-fetch overhead (~1.4x ingest rate).
        broker_max_poll_records=5000,
        # Faust's 1 MiB fetch held a bare Faust consumer to ~1.8k events/s on 2 cores; 8 MiB
        # gave ~6k (bench/bench_repartition.py, 2026-12-02).
        consumer_max_fetch_size=8 * 1024 * 1024,
        # Don't drain buffers on shutdown: unprocessed events are simply not acked, so not committed.
        stream_wait_empty=False,
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
    )
    services = Services(settings)
    if settings.needs_clickhouse:
        app.task(_opener(app, services))
    else:
        app.task(_no_database(services))
    for spec in AGENTS:
        if spec.wanted(settings):
            register: Callable[[faust.App, Services], None] = importlib.import_module(f"streams.agents.{spec.module}").register
            register(app, services)
    if not app.agents and not app.tables:
        # Ingest and store read through their own batch consumers; a Faust consumer with
        # nothing to subscribe to crashes the app, so it is not started.
        app.boot_strategy.enable_kafka_consumer = False
    app.llmwatch_services = services  # for tests and benchmarks that build the app in-process
    return app


def _no_database(services: Services) -> Callable[[], object]:
    async def ready_without_clickhouse() -> None:
        services.ready.set()  # a detect worker's outputs all go to Kafka

    return ready_without_clickhouse


def _opener(app: faust.App, services: Services) -> Callable[[], object]:
    async def open_clickhouse() -> None:
        try:
            await services.open_clickhouse()
        except Exception as exc:  # no database, no worker: stop loudly instead of stalling
            app.log.error("cannot open ClickHouse at %s: %s", services.settings.dsn, exc)
            await app.crash(exc)

    return open_clickhouse
