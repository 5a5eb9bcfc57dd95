"""The alert loop: evaluate every rule, advance alert state, write history, deliver.

The worker calls :meth:`AlertEngine.tick` from a timer, in a thread (it blocks on ClickHouse and
HTTP, and sleeps between retries)::

    engine = AlertEngine(AlertRules.load("alerts.yaml"), client)
    result = engine.tick()          # every N seconds
    ...
    engine.close()

Delivery is at-least-once per channel, and exactly-once as seen by a receiver that honours
``Idempotency-Key``: a notification stays queued (in memory and as ``delivery_status='pending'``
in the ``alerts`` table) until a channel answers 2xx, rejects it (4xx), or ``give_up_after`` passes.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import httpx
from clickhouse_connect.driver.client import Client

from streams.alerting.delivery import Attempt, send
from streams.alerting.evaluate import Observation, evaluate
from streams.alerting.history import AlertHistory
from streams.alerting.rules import AlertRules
from streams.alerting.state import AlertStates, Notification

log = logging.getLogger(__name__)


@dataclass
class TickResult:
    """What one tick saw and did."""

    now: float
    observations: list[Observation] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)  # created this tick
    attempts: list[Attempt] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    queued: int = 0  # notifications still waiting for at least one channel

    @property
    def firing(self) -> list[Observation]:
        """Observations whose condition holds now (pending or firing)."""
        return [o for o in self.observations if o.firing]


#: Records notifications and attempts: ``write(result, notifications, attempts)``.
Writer = Callable[[TickResult, list[Notification], Sequence[Attempt]], None]


class AlertEngine:
    """Evaluates ``rules`` against ClickHouse and notifies their channels.

    ``clock`` gives the evaluation time when ``tick`` is called without ``now``; ``http`` lets the
    caller share or mock an ``httpx.Client`` (one is created and owned otherwise); ``sleep`` is
    the pause between retries.
    """

    def __init__(
        self,
        rules: AlertRules,
        client: Client,
        *,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rules = rules
        self.history = AlertHistory(client)
        self.clock = clock
        self.sleep = sleep
        self.states = AlertStates()
        self.queue: list[Notification] = []
        self._client = client
        self._http = http or httpx.Client()
        self._owns_http = http is None
        self._restored = False
        self._lock = threading.Lock()  # the queue and states, shared by evaluate and deliver
        self._deliver_lock = threading.Lock()  # one delivery round at a time

    def close(self) -> None:
        """Close the HTTP client if the engine created it (the ClickHouse client is the caller's)."""
        if self._owns_http:
            self._http.close()

    def restore(self) -> None:
        """Resume firing alerts and undelivered notifications from history (runs on the first tick)."""
        known = {rule.name for rule in self.rules.rules}
        for state in self.history.open_alerts():
            if state.rule in known:
                self.states.restore(state)
        queued = {n.notification_id for n in self.queue}
        for n in self.history.undelivered():
            if n.notification_id not in queued:
                if n.rule in known:
                    n.cooldown_s = self.rules.rule(n.rule).cooldown_s
                self.queue.append(n)
        self._restored = True

    def tick(self, now: float | None = None) -> TickResult:
        """Evaluate all rules at ``now`` (default: ``clock()``), notify, and report what happened."""
        result = self.evaluate(now)
        self.deliver(result)
        return result

    def evaluate(self, now: float | None = None) -> TickResult:
        """The ClickHouse half of a tick: restore state once, evaluate the rules, queue and record
        the new notifications. No HTTP: the worker runs this on its ClickHouse thread and
        :meth:`deliver` on a thread of its own, so a hung receiver never holds up an insert."""
        with self._lock:
            now = self.clock() if now is None else now
            result = TickResult(now)
            if not self._restored:
                try:
                    self.restore()
                except Exception as exc:  # without the old state we would re-notify: skip the tick
                    result.errors.append(f"cannot restore alert state from ClickHouse: {exc}")
                    log.warning(result.errors[-1])
                    return result
            for rule in self.rules.rules:
                try:
                    observations = evaluate(rule, self._client, now)
                except Exception as exc:  # one broken rule must not stop the others; state is kept
                    result.errors.append(f"rule {rule.name!r}: evaluation failed: {exc}")
                    log.warning(result.errors[-1])
                    continue
                result.observations += observations
                result.notifications += self.states.update(rule, observations, now)
            self.queue += result.notifications
            self.record(result, result.notifications)
            result.queued = len(self.queue)
            return result

    def deliver(self, result: TickResult, write: Writer | None = None) -> TickResult:
        """The HTTP half: send what is due in the queue at ``result.now``, recording attempts and
        statuses with ``write`` (default: straight to ClickHouse; the worker collects them and
        writes them on its ClickHouse thread)."""
        with self._deliver_lock:
            self._deliver(result.now, result, write or self.record)
            result.queued = len(self.queue)
        return result

    def record(self, result: TickResult, notifications: list[Notification], attempts: Sequence[Attempt] = ()) -> None:
        """Write notifications and delivery attempts to ClickHouse (errors go to ``result``)."""
        try:
            self.history.record_attempts(attempts)
            self.history.write(notifications)
        except Exception as exc:  # delivery goes on; the next write of these rows catches up
            result.errors.append(f"cannot write alert history: {exc}")
            log.warning(result.errors[-1])

    def _deliver(self, now: float, result: TickResult, write: Writer) -> None:
        start = time.monotonic()

        def tick_clock() -> float:  # attempt times on the tick's timeline, even with a fake clock
            return now + (time.monotonic() - start)

        down: set[str] = set()  # a channel that failed this tick is not hammered with the rest
        with self._lock:
            due = list(self.queue)
        for n in due:
            attempts: list[Attempt] = []
            changed = False
            for name in n.pending_channels:
                channel = self.rules.channels.get(name)
                if channel is None:
                    n.channel_status[name], n.last_error, changed = "expired", f"channel {name!r} is no longer configured", True
                    continue
                if name in down or n.next_attempt_at.get(name, 0.0) > now:
                    continue
                if now - n.event_at > channel.give_up_after_s:
                    n.channel_status[name], n.last_error, changed = "expired", f"{name}: gave up after {channel.give_up_after_s:g}s", True
                    continue
                sent = send(channel, n, self._http, generator_url=self.rules.generator_url, clock=tick_clock,
                            sleep=self.sleep, first_attempt=n.channel_attempts.get(name, 0) + 1)
                attempts += sent.attempts
                n.channel_attempts[name] = n.channel_attempts.get(name, 0) + len(sent.attempts)
                changed = True
                if sent.delivered:
                    n.channel_status[name] = "delivered"
                elif sent.rejected:
                    n.channel_status[name], n.last_error = "rejected", f"{name}: {sent.attempts[-1].error}"
                else:
                    down.add(name)
                    n.last_error = f"{name}: {sent.attempts[-1].error}"
                    if sent.retry_at is not None:
                        n.next_attempt_at[name] = sent.retry_at
            result.attempts += attempts
            if changed:
                write(result, [n], attempts)
            if not n.pending_channels:
                with self._lock:
                    self.queue.remove(n)
