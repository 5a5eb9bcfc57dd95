"""A real Prometheus Alertmanager for tests: built from source once, run on loopback ports.

Alertmanager's Go module embeds its web UI (``//go:embed app/dist``), which is not part of the
published module, so ``go install`` cannot build it. :func:`ensure_alertmanager` downloads the
module with ``go mod download`` (the Go module proxy only), copies it to a scratch folder, adds
placeholder UI pages and runs ``go build``. The binary is cached under
``$LLMWATCH_CACHE/alertmanager/<version>/alertmanager`` (see
:func:`streams.devtools.kafka_local.cache_root`); later calls return at once.

>>> with LocalAlertmanager("http://127.0.0.1:8080/hook") as am:   # doctest: +SKIP
...     httpx.post(am.url + "/api/v2/alerts", json=[{"labels": {"alertname": "x"}}])
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from collections.abc import Iterator
from typing import IO, Any

import httpx
import yaml

from streams.devtools.kafka_local import cache_root, free_port

ALERTMANAGER_VERSION = "0.35.0"
MODULE = "github.com/prometheus/alertmanager"
GO_HINT = "install Go 1.26+ (apt-get install golang, or https://go.dev/dl)"
_UI_PLACEHOLDERS = ("ui/app/dist/elm/index.html", "ui/app/dist/mantine/index.html")


class AlertmanagerSetupError(RuntimeError):
    """Alertmanager could not be built or started; the message says how to fix it."""


# --------------------------------------------------------------------------- build

def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise AlertmanagerSetupError(f"go not found: {GO_HINT}; needed once to build Alertmanager {ALERTMANAGER_VERSION}")
    return go


def _go_env() -> dict[str, str]:
    """The caller's environment with module mode on and no stray go.work in the way."""
    return {**os.environ, "GO111MODULE": "on", "GOWORK": "off", "GOFLAGS": "-mod=readonly"}


def _run_go(go: str, args: list[str], cwd: Path, what: str) -> str:
    """Run ``go args`` in ``cwd``; stdout, or an :class:`AlertmanagerSetupError` with the tail."""
    proc = subprocess.run([go, *args], cwd=cwd, env=_go_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise AlertmanagerSetupError(
            f"{what} failed (`go {' '.join(args[:2])}` needs the Go module proxy, see GOPROXY; "
            f"'requires go >= 1.26' means {GO_HINT}, or let Go >= 1.21 fetch it with GOTOOLCHAIN=auto):\n{tail}"
        )
    return proc.stdout


def _module_source(go: str, version: str, scratch: Path) -> Path:
    """The read-only module cache folder of Alertmanager ``version`` (downloaded if missing)."""
    out = _run_go(go, ["mod", "download", "-json", f"{MODULE}@v{version}"], scratch, f"downloading {MODULE}@v{version}")
    info = json.loads(out)
    if info.get("Error") or not info.get("Dir"):
        raise AlertmanagerSetupError(f"go mod download {MODULE}@v{version}: {info.get('Error') or 'no module folder'}")
    return Path(info["Dir"])


def _writable_copy(source: Path, dest: Path) -> Path:
    """Copy the module tree to ``dest`` and make it writable (the module cache is read-only)."""
    shutil.copytree(source, dest, symlinks=True)
    for root, dirs, files in os.walk(dest):
        for name in [*dirs, *files]:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
    dest.chmod(dest.stat().st_mode | 0o200)
    for rel in _UI_PLACEHOLDERS:  # what //go:embed app/dist needs; the UI is not used here
        page = dest / rel
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<!doctype html><title>Alertmanager</title><p>UI not built (llmwatch test build).</p>\n")
    return dest


def _ldflags(version: str) -> str:
    pkg = "github.com/prometheus/common/version"
    return f"-X {pkg}.Version={version} -X {pkg}.Branch=llmwatch-devtools -X {pkg}.Revision=v{version}"


def _build(version: str, home: Path, target: Path) -> None:
    """Build Alertmanager ``version`` into ``target`` via a temp file and an atomic rename."""
    go = _go()
    for stale in home.glob("build-*"):  # a killed build's leftovers (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    for stale in home.glob("alertmanager.*.tmp"):
        stale.unlink(missing_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=home))
    partial = home / f"alertmanager.{uuid.uuid4().hex}.tmp"
    try:
        src = _writable_copy(_module_source(go, version, scratch), scratch / "src")
        _run_go(go, ["build", "-trimpath", "-ldflags", _ldflags(version), "-o", str(partial), "./cmd/alertmanager"],
                src, f"building Alertmanager {version}")
        check = subprocess.run([str(partial), "--version"], capture_output=True, text=True, check=False)
        if check.returncode != 0 or version not in check.stdout + check.stderr:
            raise AlertmanagerSetupError(f"built Alertmanager does not run: {(check.stdout + check.stderr).strip()[:500]}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(path: Path, waiting: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; tell stderr when another process has it."""
    with open(path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(waiting)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_alertmanager(version: str = ALERTMANAGER_VERSION, cache_dir: Path | None = None) -> Path:
    """Path of an Alertmanager ``version`` binary, built with ``go`` on first use (1-2 minutes).

    The binary appears at its final path only once it built and ran (atomic rename), so an
    interrupted build is redone; concurrent first callers wait on a lock and share one build.
    """
    home = (cache_dir or cache_root() / "alertmanager") / version
    binary = home / "alertmanager"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home / ".lock", f"Waiting for another process building Alertmanager {version} in {home}..."):
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
        _go()
        _say(f"Building Prometheus Alertmanager {version} from source with go (first run only, ~2 min) -> {binary}")
        started = time.monotonic()
        _build(version, home, binary)
        _say(f"Built Alertmanager {version} in {time.monotonic() - started:.0f}s")
    return binary


# --------------------------------------------------------------------------- run

def alertmanager_config(webhook_url: str, group_wait: str = "1s", group_interval: str = "1s",
                        repeat_interval: str = "1h") -> dict[str, Any]:
    """One route, every alert in its own group, to one webhook receiver that also gets resolutions."""
    return {
        "route": {
            "receiver": "webhook",
            "group_by": ["..."],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LocalAlertmanager:
    """A real Alertmanager on ``127.0.0.1:<free port>``, clustering off, state in a temp folder.

    ``webhook_url`` receives Alertmanager's webhook notifications (payload ``version: "4"``).
    """

    def __init__(self, webhook_url: str, *, group_wait: str = "1s", group_interval: str = "1s",
                 repeat_interval: str = "1h", binary: Path | None = None) -> None:
        self.config = alertmanager_config(webhook_url, group_wait, group_interval, repeat_interval)
        self.binary = binary
        self.port: int | None = None
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the base URL llmwatch's alertmanager channel takes."""
        if self.port is None:
            raise RuntimeError("Alertmanager not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """Alertmanager's stdout and stderr."""
        if self.workdir is None:
            raise RuntimeError("Alertmanager not started")
        return self.workdir / "alertmanager.log"

    def _launch(self, binary: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.port = free_port()
        cmd = [str(binary), f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
               f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=self.workdir, start_new_session=True)

    def start(self, timeout: float = 30.0) -> LocalAlertmanager:
        """Build (first use) and start Alertmanager, then wait for ``/-/ready``.

        A port taken between choosing and binding it is retried on another port.
        """
        binary = self.binary or ensure_alertmanager()
        self.workdir = Path(tempfile.mkdtemp(prefix="llmwatch-alertmanager-"))
        atexit.register(self.stop)  # never leave it running past this Python process
        for _ in range(3):
            with open(self.log_file, "ab") as log:
                self._proc = self._launch(binary, log)
            try:
                self._wait_ready(timeout)
                return self
            except AlertmanagerSetupError:
                lost_port = "address already in use" in _tail(self.log_file, 5)
                self.stop(keep_workdir=True)
                if not lost_port:
                    raise
        raise AlertmanagerSetupError(f"Alertmanager could not bind a free port; log: {self.log_file}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise AlertmanagerSetupError(f"Alertmanager exited during startup; tail of {self.log_file}:\n{_tail(self.log_file)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/-/ready", timeout=1.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop(keep_workdir=True)
                raise AlertmanagerSetupError(f"Alertmanager not ready after {timeout:.0f}s; tail of {self.log_file}:\n{_tail(self.log_file)}")
            time.sleep(0.05)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds now (``GET /api/v2/alerts``)."""
        response = httpx.get(self.url + "/api/v2/alerts", timeout=5.0)
        response.raise_for_status()
        return response.json()

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

    def __enter__(self) -> LocalAlertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
