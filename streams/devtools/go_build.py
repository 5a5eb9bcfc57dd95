"""Go-built tools for development and tests: built once with the machine's ``go``, then cached.

Alertmanager and the OpenTelemetry Collector are built from the Go module proxy the way the
Kafka broker is assembled from Maven jars: on first use, into
``$LLMWATCH_CACHE/<name>/<version>[-<variant>]/<name>`` (see :func:`streams.devtools.kafka_local.cache_root`),
behind a file lock so concurrent first callers share one build, and through a temp file and an
atomic rename so an interrupted build is redone rather than half-used.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from streams.devtools.kafka_local import cache_root

GO_HINT = "install Go 1.26+ (apt-get install golang, or https://go.dev/dl)"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, or ``(no log)``."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def locked(path: Path, waiting: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; tell stderr when another process has it."""
    with open(path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(waiting)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class GoTool:
    """How to build one tool: its cache name, the words that name it, its error type."""

    name: str  # the binary's and the cache folder's name
    product: str  # "Alertmanager", "the OpenTelemetry Collector": for messages
    version: str
    error: type[RuntimeError]
    goflags: str = "-mod=readonly"
    variant: str = ""  # distinguishes builds of one version with other components (a hash of the sources)

    def go(self) -> str:
        """The ``go`` command, or the setup error naming the fix."""
        go = shutil.which("go")
        if go is None:
            raise self.error(f"go not found: {GO_HINT}; needed once to build {self.product} {self.version}")
        return go

    def run_go(self, go: str, args: list[str], cwd: Path, what: str) -> str:
        """Run ``go args`` in ``cwd``; stdout, or the setup error with the output's tail."""
        env = {**os.environ, "GO111MODULE": "on", "GOWORK": "off", "GOFLAGS": self.goflags}
        proc = subprocess.run([go, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            out = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
            raise self.error(
                f"{what} failed (`go {' '.join(args[:2])}` needs the Go module proxy, see GOPROXY; "
                f"'requires go >= 1.26' means {GO_HINT}, or let Go >= 1.21 fetch it with GOTOOLCHAIN=auto):\n{out}"
            )
        return proc.stdout

    def ensure(self, build: Callable[[str, Path, Path], None], cache_dir: Path | None = None) -> Path:
        """Path of the cached binary; on first use ``build(go, scratch, partial)`` writes it to
        ``partial`` (in an empty ``scratch`` folder), which must then run with ``--version``."""
        home = (cache_dir or cache_root() / self.name) / (f"{self.version}-{self.variant}" if self.variant else self.version)
        binary = home / self.name
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
        home.mkdir(parents=True, exist_ok=True)
        with locked(home / ".lock", f"Waiting for another process building {self.product} {self.version} in {home}..."):
            if binary.is_file() and os.access(binary, os.X_OK):
                return binary
            go = self.go()
            say(f"Building {self.product} {self.version} with go (first run only, ~2 min) -> {binary}")
            started = time.monotonic()
            self._build(go, build, home, binary)
            say(f"Built {self.product} {self.version} in {time.monotonic() - started:.0f}s")
        return binary

    def _build(self, go: str, build: Callable[[str, Path, Path], None], home: Path, target: Path) -> None:
        for stale in home.glob("build-*"):  # a killed build's leftovers (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        for stale in home.glob(f"{self.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="build-", dir=home))
        partial = home / f"{self.name}.{uuid.uuid4().hex}.tmp"
        try:
            build(go, scratch, partial)
            check = subprocess.run([str(partial), "--version"], capture_output=True, text=True, check=False)
            if check.returncode != 0 or self.version not in check.stdout + check.stderr:
                raise self.error(f"built {self.product} does not run: {(check.stdout + check.stderr).strip()[:500]}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            shutil.rmtree(scratch, ignore_errors=True)
