"""A real OpenTelemetry Collector for tests: built from Go modules once, run on a loopback port.

No Collector binary is downloaded: :func:`ensure_otelcol` writes a ``go.mod`` that pins otelcol
v0.165.0 (core modules v1.71.0), the otlp receiver and batch processor v0.165.0 and the contrib
kafkaexporter v0.165.1, plus a hand-written ``main.go`` (what the Collector Builder would
generate, with ``Factories.Telemetry`` set), and runs ``go mod tidy`` and ``go build`` (the Go
module proxy only). The first build takes about 2 minutes and 1 GB of memory on 2 cores; the
binary is cached under ``$LLMWATCH_CACHE/otelcol/<version>/otelcol`` (see
:func:`streams.devtools.kafka_local.cache_root`) and later calls return at once.
:mod:`streams.devtools.alertmanager` follows the same pattern.

>>> with LocalCollector("127.0.0.1:9092", {"otlp_spans": "otlp_proto"}) as col:   # doctest: +SKIP
...     exporter = OTLPSpanExporter(endpoint=col.traces_url("otlp_spans"))
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from streams.devtools.kafka_local import cache_root, free_port

OTELCOL_VERSION = "0.165.0"
CORE_VERSION = "1.71.0"
CONTRIB_VERSION = "0.165.1"
GO_HINT = "install Go 1.26+ (apt-get install golang, or https://go.dev/dl)"

_GO_MOD = f"""module llmwatch.local/otelcol

go 1.26

require (
\tgo.opentelemetry.io/collector/component v{CORE_VERSION}
\tgo.opentelemetry.io/collector/confmap v{CORE_VERSION}
\tgo.opentelemetry.io/collector/confmap/provider/envprovider v{CORE_VERSION}
\tgo.opentelemetry.io/collector/confmap/provider/fileprovider v{CORE_VERSION}
\tgo.opentelemetry.io/collector/exporter v{CORE_VERSION}
\tgo.opentelemetry.io/collector/processor v{CORE_VERSION}
\tgo.opentelemetry.io/collector/receiver v{CORE_VERSION}
\tgo.opentelemetry.io/collector/otelcol v{OTELCOL_VERSION}
\tgo.opentelemetry.io/collector/service v{OTELCOL_VERSION}
\tgo.opentelemetry.io/collector/processor/batchprocessor v{OTELCOL_VERSION}
\tgo.opentelemetry.io/collector/receiver/otlpreceiver v{OTELCOL_VERSION}
\tgithub.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter v{CONTRIB_VERSION}
)
"""

#: What the Collector Builder would generate: three factories, the telemetry factory, files as config.
_MAIN_GO = """// Command otelcol: an OpenTelemetry Collector with the otlp receiver, the batch processor and
// the kafka exporter, built by llmwatch's devtools for tests.
package main

import (
	"log"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func components() (otelcol.Factories, error) {
	var err error
	factories := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](batchprocessor.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](kafkaexporter.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	return factories, nil
}

func main() {
	info := component.BuildInfo{Command: "otelcol", Description: "llmwatch test Collector", Version: "%s"}
	settings := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{envprovider.NewFactory(), fileprovider.NewFactory()},
				DefaultScheme:     "env",
			},
		},
	}
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		log.Fatal(err)
	}
}
"""


class CollectorSetupError(RuntimeError):
    """The Collector could not be built or started; the message says how to fix it."""


# --------------------------------------------------------------------------- build

def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise CollectorSetupError(f"go not found: {GO_HINT}; needed once to build the OpenTelemetry Collector {OTELCOL_VERSION}")
    return go


def _run_go(go: str, args: list[str], cwd: Path, what: str) -> None:
    """Run ``go args`` in ``cwd``, or raise a :class:`CollectorSetupError` with the output's tail."""
    env = {**os.environ, "GO111MODULE": "on", "GOWORK": "off", "GOFLAGS": "-mod=mod -buildvcs=false"}
    proc = subprocess.run([go, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise CollectorSetupError(
            f"{what} failed (`go {args[0]}` needs the Go module proxy, see GOPROXY; "
            f"'requires go >= 1.26' means {GO_HINT}):\n{tail}"
        )


def _build(version: str, home: Path, target: Path) -> None:
    """Build the Collector into ``target`` via a temp file and an atomic rename."""
    go = _go()
    for stale in home.glob("build-*"):  # a killed build's leftovers (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    for stale in home.glob("otelcol.*.tmp"):
        stale.unlink(missing_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=home))
    partial = home / f"otelcol.{uuid.uuid4().hex}.tmp"
    try:
        (scratch / "go.mod").write_text(_GO_MOD)
        (scratch / "main.go").write_text(_MAIN_GO % version)
        _run_go(go, ["mod", "tidy"], scratch, f"resolving the Collector {version}'s modules")
        _run_go(go, ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."], scratch,
                f"building the Collector {version}")
        check = subprocess.run([str(partial), "--version"], capture_output=True, text=True, check=False)
        if check.returncode != 0 or version not in check.stdout + check.stderr:
            raise CollectorSetupError(f"built Collector does not run: {(check.stdout + check.stderr).strip()[:500]}")
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


def ensure_otelcol(version: str = OTELCOL_VERSION, cache_dir: Path | None = None) -> Path:
    """Path of the Collector binary, built with ``go`` on first use (about 2 minutes).

    The binary appears at its final path only once it built and ran (atomic rename), so an
    interrupted build is redone; concurrent first callers wait on a lock and share one build.
    """
    home = (cache_dir or cache_root() / "otelcol") / version
    binary = home / "otelcol"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home / ".lock", f"Waiting for another process building the Collector {version} in {home}..."):
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
        _go()
        _say(f"Building the OpenTelemetry Collector {version} from Go modules (first run only, ~2 min) -> {binary}")
        started = time.monotonic()
        _build(version, home, binary)
        _say(f"Built the Collector {version} in {time.monotonic() - started:.0f}s")
    return binary


# --------------------------------------------------------------------------- run

def collector_config(brokers: str, pipelines: dict[str, tuple[str, int]], logs_topic: str = "") -> dict[str, Any]:
    """OTLP/HTTP receiver -> batch -> kafka exporter, one pipeline per ``{topic: (encoding, port)}``.

    Each pipeline has a receiver on its own port, so a test knows which encoding a span took.
    ``logs_topic`` sends the first receiver's logs there too (``otlp_proto``). With one topic this
    is the config the README gives users.

    >>> cfg = collector_config("127.0.0.1:9092", {"otlp_spans": ("otlp_proto", 4318)})
    >>> cfg["exporters"]["kafka/0"]["traces"], cfg["service"]["pipelines"]["traces/0"]["receivers"]
    ({'topic': 'otlp_spans', 'encoding': 'otlp_proto'}, ['otlp/0'])
    """
    receivers: dict[str, Any] = {}
    exporters: dict[str, Any] = {}
    pipes: dict[str, Any] = {}
    for i, (topic, (encoding, port)) in enumerate(pipelines.items()):
        receivers[f"otlp/{i}"] = {"protocols": {"http": {"endpoint": f"127.0.0.1:{port}"}}}
        exporters[f"kafka/{i}"] = {"brokers": brokers.split(","), "traces": {"topic": topic, "encoding": encoding}}
        pipes[f"traces/{i}"] = {"receivers": [f"otlp/{i}"], "processors": ["batch"], "exporters": [f"kafka/{i}"]}
    if logs_topic:
        exporters["kafka/logs"] = {"brokers": brokers.split(","), "logs": {"topic": logs_topic, "encoding": "otlp_proto"}}
        pipes["logs"] = {"receivers": ["otlp/0"], "processors": ["batch"], "exporters": ["kafka/logs"]}
    return {
        "receivers": receivers,
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": exporters,
        "service": {"telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}}, "pipelines": pipes},
    }


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class LocalCollector:
    """A real Collector receiving OTLP/HTTP on ``127.0.0.1:<free port>`` and exporting to Kafka.

    ``topics`` maps each traces topic to its encoding (``otlp_proto`` or ``otlp_json``): one
    pipeline per topic, each with a receiver of its own (:meth:`traces_url`).
    """

    def __init__(self, brokers: str, topics: dict[str, str] | None = None, *, logs_topic: str = "",
                 binary: Path | None = None) -> None:
        self.brokers = brokers
        self.topics = topics or {"otlp_spans": "otlp_proto"}
        self.logs_topic = logs_topic
        self.binary = binary
        self.ports: dict[str, int] = {}
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def endpoint(self, topic: str | None = None) -> str:
        """``http://127.0.0.1:PORT``: the OTLP/HTTP base URL of ``topic``'s pipeline (default: the first)."""
        if not self.ports:
            raise RuntimeError("Collector not started")
        return f"http://127.0.0.1:{self.ports[topic or next(iter(self.topics))]}"

    def traces_url(self, topic: str | None = None) -> str:
        """Where an OTLP/HTTP span exporter sends spans bound for ``topic``."""
        return self.endpoint(topic) + "/v1/traces"

    def logs_url(self) -> str:
        """Where an OTLP/HTTP log exporter sends records bound for ``logs_topic``."""
        return self.endpoint() + "/v1/logs"

    @property
    def log_file(self) -> Path:
        """The Collector's stdout and stderr."""
        if self.workdir is None:
            raise RuntimeError("Collector not started")
        return self.workdir / "otelcol.log"

    def _launch(self, binary: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        self.ports = {topic: free_port() for topic in self.topics}
        pipelines = {topic: (encoding, self.ports[topic]) for topic, encoding in self.topics.items()}
        config = self.workdir / "otelcol.yaml"
        config.write_text(yaml.safe_dump(collector_config(self.brokers, pipelines, self.logs_topic), sort_keys=False))
        return subprocess.Popen([str(binary), f"--config={config}"], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)

    def start(self, timeout: float = 30.0) -> LocalCollector:
        """Build (first use) and start the Collector, then wait for its OTLP/HTTP port.

        A port taken between choosing and binding it is retried on another port.
        """
        binary = self.binary or ensure_otelcol()
        self.workdir = Path(tempfile.mkdtemp(prefix="llmwatch-otelcol-"))
        atexit.register(self.stop)  # never leave it running past this Python process
        for _ in range(3):
            with open(self.log_file, "ab") as log:
                self._proc = self._launch(binary, log)
            try:
                self._wait_ready(timeout)
                return self
            except CollectorSetupError:
                lost_port = "address already in use" in _tail(self.log_file, 5)
                self.stop(keep_workdir=True)
                if not lost_port:
                    raise
        raise CollectorSetupError(f"the Collector could not bind a free port; log: {self.log_file}")

    def _wait_ready(self, timeout: float) -> None:
        """Ready once the log says so and the OTLP/HTTP port accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise CollectorSetupError(f"the Collector exited during startup; tail of {self.log_file}:\n{_tail(self.log_file)}")
            if "Everything is ready" in _tail(self.log_file, 200) and all(map(_port_open, self.ports.values())):
                return
            if time.monotonic() > deadline:
                self.stop(keep_workdir=True)
                raise CollectorSetupError(f"the Collector not ready after {timeout:.0f}s; tail of {self.log_file}:\n{_tail(self.log_file)}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0, keep_workdir: bool = False) -> None:
        """SIGTERM (the Collector flushes its exporters), SIGKILL after ``timeout`` seconds."""
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

    def __enter__(self) -> LocalCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
