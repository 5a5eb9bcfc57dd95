"""Start, stop and watch a worker process (used by ``llmwatch demo``, benchmarks and tests)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from streams.config import Settings
from streams.kafka.lag import wait_caught_up
from streams.worker.preflight import PREFIX


class WorkerDied(RuntimeError):
    """The worker process exited; the message is its own one-line reason when it gave one."""

REPO = Path(__file__).resolve().parents[2]


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

    def failure(self) -> str:
        """Why the worker exited: the last ``llmwatch worker:`` line of its log, else the log's tail."""
        text = self.log_text()
        lines = [line for line in text.splitlines() if line.startswith(PREFIX)]
        code = self.proc.returncode if self.proc is not None else None
        return lines[-1] if lines else f"the worker exited with status {code}; log tail:\n{text[-2000:]}"

    def check_alive(self) -> None:
        """Raise :class:`WorkerDied` with the worker's reason if it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise WorkerDied(self.failure())

    def wait_ready(self, timeout: float, poll_s: float = 0.25) -> None:
        """Block until ``/healthz`` answers 200 (ClickHouse open, detectors loaded); raise
        :class:`WorkerDied` as soon as the process exits, TimeoutError after ``timeout``."""
        import httpx

        url = f"http://127.0.0.1:{self.settings.web_port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(poll_s)
        raise TimeoutError(f"worker not ready within {timeout}s; log tail:\n{self.log_text()[-4000:]}")

    def run_until_caught_up(self, timeout: float) -> None:
        """Start, wait until everything on the calls topic is committed, stop (also on failure)."""
        self.start()
        try:
            self.wait_caught_up(timeout)
        finally:
            self.stop()

    def wait_caught_up(self, timeout: float, poll_s: float = 0.5) -> None:
        """Block until every message of the calls topic is committed; raise :class:`WorkerDied`
        within ``poll_s`` of the worker exiting, TimeoutError with the log tail after ``timeout``."""
        s = self.settings
        caught_up = asyncio.run(
            wait_caught_up(s.kafka_bootstrap, s.calls_groups, [s.calls_topic], timeout, poll_s, keep_waiting=self.alive)
        )
        self.check_alive()
        if not caught_up:
            raise TimeoutError(f"worker did not catch up within {timeout}s; log tail:\n{self.log_text()[-4000:]}")
