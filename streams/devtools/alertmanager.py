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

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from streams.devtools.go_build import GoTool
from streams.devtools.kafka_local import free_port
from streams.devtools.local_process import LocalProcess

ALERTMANAGER_VERSION = "0.35.0"
MODULE = "github.com/prometheus/alertmanager"
_UI_PLACEHOLDERS = ("ui/app/dist/elm/index.html", "ui/app/dist/mantine/index.html")


class AlertmanagerSetupError(RuntimeError):
    """Alertmanager could not be built or started; the message says how to fix it."""


# --------------------------------------------------------------------------- build

def _module_source(tool: GoTool, go: str, scratch: Path) -> Path:
    """The read-only module cache folder of Alertmanager ``tool.version`` (downloaded if missing)."""
    version = tool.version
    out = tool.run_go(go, ["mod", "download", "-json", f"{MODULE}@v{version}"], scratch, f"downloading {MODULE}@v{version}")
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


def ensure_alertmanager(version: str = ALERTMANAGER_VERSION, cache_dir: Path | None = None) -> Path:
    """Path of an Alertmanager ``version`` binary, built with ``go`` on first use (1-2 minutes).

    The binary appears at its final path only once it built and ran (atomic rename), so an
    interrupted build is redone; concurrent first callers wait on a lock and share one build.
    """
    tool = GoTool("alertmanager", "Alertmanager", version, AlertmanagerSetupError)

    def build(go: str, scratch: Path, partial: Path) -> None:
        """The module's source, writable, with placeholder UI pages, built into ``partial``."""
        src = _writable_copy(_module_source(tool, go, scratch), scratch / "src")
        tool.run_go(go, ["build", "-trimpath", "-ldflags", _ldflags(version), "-o", str(partial), "./cmd/alertmanager"],
                    src, f"building Alertmanager {version}")

    return tool.ensure(build, cache_dir)


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


class LocalAlertmanager(LocalProcess):
    """A real Alertmanager on ``127.0.0.1:<free port>``, clustering off, state in a temp folder.

    ``webhook_url`` receives Alertmanager's webhook notifications (payload ``version: "4"``).
    """

    label = "Alertmanager"
    log_name = "alertmanager.log"
    error = AlertmanagerSetupError

    def __init__(self, webhook_url: str, *, group_wait: str = "1s", group_interval: str = "1s",
                 repeat_interval: str = "1h", binary: Path | None = None) -> None:
        super().__init__(binary)
        self.config = alertmanager_config(webhook_url, group_wait, group_interval, repeat_interval)
        self.port: int | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the base URL llmwatch's alertmanager channel takes."""
        if self.port is None:
            raise RuntimeError("Alertmanager not started")
        return f"http://127.0.0.1:{self.port}"

    def default_binary(self) -> Path:
        return ensure_alertmanager()

    def launch(self, binary: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.port = free_port()
        return self.popen([str(binary), f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
                           f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="], log)

    def ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(self.url + "/-/ready", timeout=1.0).status_code == 200
        return False

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds now (``GET /api/v2/alerts``)."""
        response = httpx.get(self.url + "/api/v2/alerts", timeout=5.0)
        response.raise_for_status()
        return response.json()
