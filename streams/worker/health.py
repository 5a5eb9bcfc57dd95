"""What ``/healthz`` and the ``llmwatch_degraded`` gauge say beyond "started": whether inserts
have been failing for longer than a bound, and whether the consumer lag has gone without
shrinking for longer than another (commits stalled, or the worker falling behind).

Faust-free: the observability agent feeds it lag readings and the sinks' failure times.

>>> h = Health(insert_bound_s=30, stall_bound_s=120)
>>> h.observe_lag(500, now=0.0); h.observe_lag(400, now=60.0); h.reasons([], now=100.0)
[]
>>> h.observe_lag(450, now=200.0); h.reasons([], now=200.0)
['consumer lag 450 has not shrunk for 140 s (commits stalled or the worker is falling behind)']
>>> h.reasons([("llm_calls", 10.0)], now=100.0)[0]
'inserts into llm_calls failing for 90 s'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


@dataclass
class Health:
    """Degradation reasons from lag readings and insert failures, against two bounds."""

    insert_bound_s: float = 30.0
    stall_bound_s: float = 120.0
    _last_lag: int | None = field(default=None, repr=False)
    _progress_at: float | None = field(default=None, repr=False)

    def observe_lag(self, total_lag: int, now: float) -> None:
        """A reading of the calls topic's uncommitted messages; progress is a lag of 0 or a
        smaller lag than the last reading."""
        if self._progress_at is None or total_lag == 0 or (self._last_lag is not None and total_lag < self._last_lag):
            self._progress_at = now
        self._last_lag = total_lag

    def reasons(self, failing_since: Iterable[tuple[str, float]], now: float) -> list[str]:
        """Why the worker is degraded (empty when it is not). ``failing_since``: (table,
        monotonic time its current insert first failed) for sinks that are failing."""
        out = [
            f"inserts into {table} failing for {now - since:.0f} s"
            for table, since in failing_since
            if now - since > self.insert_bound_s
        ]
        if self._last_lag and self._progress_at is not None and now - self._progress_at > self.stall_bound_s:
            out.append(
                f"consumer lag {self._last_lag} has not shrunk for {now - self._progress_at:.0f} s "
                "(commits stalled or the worker is falling behind)"
            )
        return out
