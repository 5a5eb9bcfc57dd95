"""A server process started locally for development and tests, in a temp folder of its own.

Subclasses say how to launch it (:meth:`LocalProcess.launch`) and when it is ready
(:meth:`LocalProcess.ready`); starting with a retry when a chosen port was taken meanwhile,
stopping (SIGTERM, then SIGKILL), the log file and the temp folder's lifetime are here.
"""
from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from streams.devtools.go_build import tail


class LocalProcess:
    """Base of :class:`~streams.devtools.alertmanager.LocalAlertmanager` and
    :class:`~streams.devtools.otelcol.LocalCollector`."""

    label = "the process"  # for messages: "Alertmanager", "the Collector"
    log_name = "process.log"
    error: type[RuntimeError] = RuntimeError

    def __init__(self, binary: Path | None = None) -> None:
        self.binary = binary
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def default_binary(self) -> Path:
        raise NotImplementedError

    def launch(self, binary: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Write the config into ``self.workdir``, pick ports, start the binary."""
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    @property
    def log_file(self) -> Path:
        """The process's stdout and stderr."""
        if self.workdir is None:
            raise RuntimeError(f"{self.label} not started")
        return self.workdir / self.log_name

    def popen(self, cmd: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=self.workdir, start_new_session=True)

    def start(self, timeout: float = 30.0) -> "LocalProcess":
        """Build (first use) and start, then wait until ready; a port taken between choosing
        and binding it is retried on another port."""
        binary = self.binary or self.default_binary()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"llmwatch-{self.log_name.split('.')[0]}-"))
        atexit.register(self.stop)  # never leave it running past this Python process
        for _ in range(3):
            with open(self.log_file, "ab") as log:
                self._proc = self.launch(binary, log)
            try:
                self._wait_ready(timeout)
                return self
            except self.error:
                lost_port = "address already in use" in tail(self.log_file, 5)
                self.stop(keep_workdir=True)
                if not lost_port:
                    raise
        raise self.error(f"{self.label} could not bind a free port; log: {self.log_file}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise self.error(f"{self.label} exited during startup; tail of {self.log_file}:\n{tail(self.log_file)}")
            if self.ready():
                return
            if time.monotonic() > deadline:
                self.stop(keep_workdir=True)
                raise self.error(f"{self.label} not ready after {timeout:.0f}s; tail of {self.log_file}:\n{tail(self.log_file)}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0, keep_workdir: bool = False) -> None:
        """SIGTERM, SIGKILL after ``timeout`` seconds; removes the temp folder unless asked not to."""
        proc, self._proc = self._proc, None
        if not keep_workdir:
            atexit.unregister(self.stop)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        if self.workdir is not None and not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> "LocalProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
