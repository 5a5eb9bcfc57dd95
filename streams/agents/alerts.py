"""Alerting: evaluate the rules file on a timer and deliver notifications (see ``streams/alerting``)."""
from __future__ import annotations

import logging
from typing import Any

import faust

from streams.services import Services

log = logging.getLogger(__name__)


def register(app: faust.App, services: Services) -> None:
    s = services.settings
    if not s.alert_rules:
        return
    from streams.alerting import AlertEngine, AlertRules

    rules = AlertRules.load(s.alert_rules)  # a bad file stops the worker at start, naming the line
    state: dict[str, Any] = {}

    @app.timer(s.alert_interval_s, name="alerts")
    async def evaluate_alerts() -> None:
        if not services.ready.is_set():
            return
        if "engine" not in state:
            state["engine"] = AlertEngine(rules, services.client)
        # On the ClickHouse thread: the engine's queries share the worker's client.
        result = await services.db(state["engine"].tick)
        for note in result.notifications:
            services.metrics.alert_notifications.labels(note.status).inc()
        for attempt in result.attempts:
            services.metrics.alert_deliveries.labels(attempt.outcome).inc()
        for error in result.errors:
            log.warning("alerting: %s", error)
