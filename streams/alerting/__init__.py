"""Alerting: rules (YAML) -> evaluation (ClickHouse SQL) -> state (pending/firing/resolved) ->
delivery (signed webhooks, Slack, Alertmanager) -> history (the ``alerts`` table).

The worker builds one :class:`AlertEngine` and calls :meth:`AlertEngine.tick` from a timer::

    rules = AlertRules.load("alerts.yaml")
    engine = AlertEngine(rules, client)
    result = engine.tick()
"""
from __future__ import annotations

from streams.alerting.engine import AlertEngine, TickResult
from streams.alerting.evaluate import Observation, evaluate
from streams.alerting.rules import AlertConfigError, AlertRules, Channel, Rule

__all__ = [
    "AlertConfigError",
    "AlertEngine",
    "AlertRules",
    "Channel",
    "Observation",
    "Rule",
    "TickResult",
    "evaluate",
]
