"""``/metrics`` (Prometheus) and ``/healthz`` on the Faust web server, and the consumer-lag gauge."""
from __future__ import annotations

import logging
import time

import faust
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.kafka.lag import consumer_lag
from streams.worker.services import Services

log = logging.getLogger(__name__)


def register(app: faust.App, services: Services) -> None:
    s = services.settings

    @app.page("/metrics")
    async def metrics(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        # aiohttp wants the charset outside content_type; Prometheus' text format is utf-8 anyway.
        return web.text(generate_latest(services.metrics.registry).decode(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        ready = services.ready.is_set() and not services.loading
        degraded = services.degraded_reasons() if ready else []
        body = {
            "status": ("degraded" if degraded else "ok") if ready else "starting",
            "reasons": degraded,
            "clickhouse": "ready" if services.ready.is_set() else "opening",
            "loading": sorted(services.loading),  # detector agents still loading their models
            "uptime_s": round(time.time() - services.started_at, 1),
            "agents": sorted(a.name for a in app.agents.values()),
        }
        return web.json(body, status=200 if ready and not degraded else 503)

    @app.timer(15.0, name="consumer_lag")
    async def update_lag() -> None:
        try:
            lag = await consumer_lag(s.kafka_bootstrap, s.calls_groups, [s.calls_topic])
        except KafkaError as exc:
            log.debug("lag unavailable: %s", exc)
            return
        for tp, value in lag.items():
            services.metrics.consumer_lag.labels(str(tp.partition)).set(value)
        services.health.observe_lag(sum(lag.values()), time.monotonic())
        services.degraded_reasons()  # keeps the gauges current between /healthz calls
