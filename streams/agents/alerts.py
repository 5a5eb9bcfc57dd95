"""Alerting: evaluate the rules file on a timer and deliver notifications (see ``streams/alerting``).

Evaluation queries ClickHouse, so it runs on the ClickHouse thread: it is a few short queries.
Delivery is HTTP with timeouts and backoff sleeps, so it runs on a thread of its own, as a task
the timer starts and never awaits: a webhook that accepts connections and never answers holds up
only the next delivery round, never an insert or a commit. Attempts and statuses are written back
on the ClickHouse thread once a round ends; undelivered notifications are in ClickHouse
(``alert_notifications``) and survive a restart.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import faust

from streams.worker.services import Services

log = logging.getLogger(__name__)


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    if not s.alert_rules:
        return
    from streams.alerting import AlertEngine, AlertRules

    rules = AlertRules.load(s.alert_rules)  # a bad file stops the worker at start, naming the line
    state: dict[str, Any] = {}
    delivery_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmwatch-alert-delivery")

    async def deliver(engine: AlertEngine, result: Any) -> None:
        logged = len(result.errors)
        writes: list[tuple[Any, list, Sequence]] = []
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(delivery_thread, engine.deliver, result, lambda *w: writes.append(w))
        for attempt in result.attempts:
            services.metrics.alert_deliveries.labels(attempt.outcome).inc()

        def write_back() -> None:
            for args in writes:
                engine.record(*args)

        await services.db(write_back)
        for error in result.errors[logged:]:
            log.warning("alerting: %s", error)

    @app.timer(s.alert_interval_s, name="alerts")
    async def evaluate_alerts() -> None:
        if not services.ready.is_set():
            return
        if "engine" not in state:
            state["engine"] = AlertEngine(rules, services.client)
        engine = state["engine"]
        result = await services.db(engine.evaluate)
        for note in result.notifications:
            services.metrics.alert_notifications.labels(note.status).inc()
        for error in result.errors:
            log.warning("alerting: %s", error)
        running = state.get("delivery")
        if running is None or running.done():  # a round still waiting on a slow receiver: skip
            state["delivery"] = asyncio.ensure_future(deliver(engine, result))
