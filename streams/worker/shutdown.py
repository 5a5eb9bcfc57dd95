"""A Faust worker whose shutdown is bounded: SIGTERM or SIGINT arms a watchdog that ends the
process after ``timeout_s`` however far the graceful stop got.

Exiting is safe at any point because nothing is acked before it is stored (the agents ack
their batches by hand after the insert), so whatever a stuck insert held is replayed by the
next worker, and the replay guard drops what did get stored. Without the bound, a hung insert
kept the worker alive past any orchestrator's grace period, whose SIGKILL then lands at a
random point; with it the exit is prompt and says why.
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Any

import faust

from streams.worker.preflight import PREFIX

#: Exit status when the watchdog ended a shutdown that overran its bound.
EXIT_SHUTDOWN_OVERRAN = 3


class BoundedShutdownWorker(faust.Worker):
    """``faust.Worker`` plus a shutdown watchdog armed by the first SIGTERM or SIGINT."""

    def __init__(self, *args: Any, shutdown_timeout_s: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shutdown_timeout_s = shutdown_timeout_s
        self._watchdog: threading.Timer | None = None

    def _on_sigterm(self) -> None:
        self.arm_shutdown_watchdog("SIGTERM")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self.arm_shutdown_watchdog("SIGINT")
        super()._on_sigint()

    def arm_shutdown_watchdog(self, why: str) -> None:
        """Start the countdown (once); it runs on a daemon thread, so a blocked event loop or a
        stuck ClickHouse thread cannot hold it up."""
        if self._watchdog is None:
            self._watchdog = threading.Timer(self.shutdown_timeout_s, _overran, args=(why, self.shutdown_timeout_s))
            self._watchdog.daemon = True
            self._watchdog.start()


def _overran(why: str, timeout_s: float) -> None:
    sys.stderr.write(
        f"{PREFIX} stopped: the shutdown after {why} took longer than {timeout_s:g} s (a stuck insert?); "
        "exiting without committing what was not stored (the next worker replays it); "
        "fix: raise LLMWATCH_SHUTDOWN_TIMEOUT_S if inserts are just slow\n"
    )
    sys.stderr.flush()
    os._exit(EXIT_SHUTDOWN_OVERRAN)
