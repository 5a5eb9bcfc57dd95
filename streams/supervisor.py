"""Start, stop and watch a worker process (used by ``llmwatch demo``, benchmarks and tests)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from streams.config import Settings
from streams.lag import wait_caught_up

REPO = Path(__file__).resolve().parents[1]


@dataclass
class WorkerProcess:
    """``python -m streams worker`` with the given settings; output goes to a log file in ``home``."""

    settings: Settings
    proc: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self) -> "WorkerProcess":
        log = Path(self.settings.home) / f"worker-{len(self.logs)}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.logs.append(log)
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, **self.settings.as_env(), "PYTHONPATH": pythonpath}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            env=env,
            cwd=REPO,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def wait_caught_up(self, timeout: float, poll_s: float = 0.5) -> None:
        """Block until every message of the calls topic is committed; raise with the log tail if not."""
        s = self.settings
        if not asyncio.run(wait_caught_up(s.kafka_bootstrap, s.consumer_group, [s.calls_topic], timeout, poll_s)):
            raise TimeoutError(f"worker did not catch up within {timeout}s; log tail:\n{self.log_text()[-4000:]}")
