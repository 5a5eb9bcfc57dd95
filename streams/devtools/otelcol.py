"""A real OpenTelemetry Collector for tests: built from Go modules once, run on a loopback port.

No Collector binary is downloaded: :func:`ensure_otelcol` writes a ``go.mod`` that pins otelcol
v0.165.0 (core modules v1.71.0), the otlp receiver and batch processor v0.165.0 and the contrib
kafkaexporter and kafkareceiver v0.165.1, plus a hand-written ``main.go`` (what the Collector Builder would
generate, with ``Factories.Telemetry`` set), and runs ``go mod tidy`` and ``go build`` (the Go
module proxy only). The first build takes about 2 minutes and 1 GB of memory on 2 cores; the
binary is cached under ``$LLMWATCH_CACHE/otelcol/<version>-<hash of the sources>/otelcol`` (see
:func:`streams.devtools.kafka_local.cache_root`) and later calls return at once.
:mod:`streams.devtools.alertmanager` follows the same pattern.

>>> with LocalCollector("127.0.0.1:9092", {"otlp_spans": "otlp_proto"}) as col:   # doctest: +SKIP
...     exporter = OTLPSpanExporter(endpoint=col.traces_url("otlp_spans"))
"""
from __future__ import annotations

import contextlib
import hashlib
import socket
import subprocess
from pathlib import Path
from typing import IO, Any

import yaml

from streams.devtools.go_build import GoTool, tail
from streams.devtools.kafka_local import free_port
from streams.devtools.local_process import LocalProcess

OTELCOL_VERSION = "0.165.0"
CORE_VERSION = "1.71.0"
CONTRIB_VERSION = "0.165.1"

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

#: What the Collector Builder would generate: the factories, the telemetry factory, files as config.
_MAIN_GO = """// Command otelcol: an OpenTelemetry Collector with the otlp and kafka receivers, the batch
// processor and the kafka exporter, built by llmwatch's devtools for tests.
package main

import (
	"log"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kafkareceiver"
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
	if factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory(), kafkareceiver.NewFactory()); err != nil {
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

def ensure_otelcol(version: str = OTELCOL_VERSION, cache_dir: Path | None = None) -> Path:
    """Path of the Collector binary, built with ``go`` on first use (about 2 minutes).

    The binary appears at its final path only once it built and ran (atomic rename), so an
    interrupted build is redone; concurrent first callers wait on a lock and share one build.
    """
    sources = hashlib.sha256((_GO_MOD + _MAIN_GO).encode()).hexdigest()[:8]
    tool = GoTool("otelcol", "the OpenTelemetry Collector", version, CollectorSetupError, goflags="-mod=mod -buildvcs=false",
                  variant=sources)

    def build(go: str, scratch: Path, partial: Path) -> None:
        """A go.mod of the chosen modules and a hand-written main, tidied and built into ``partial``."""
        (scratch / "go.mod").write_text(_GO_MOD)
        (scratch / "main.go").write_text(_MAIN_GO % version)
        tool.run_go(go, ["mod", "tidy"], scratch, f"resolving the Collector {version}'s modules")
        tool.run_go(go, ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."], scratch,
                    f"building the Collector {version}")

    return tool.ensure(build, cache_dir)


# --------------------------------------------------------------------------- run

def collector_config(brokers: str, pipelines: dict[str, tuple[str, int]], logs_topic: str = "",
                     relay_logs: tuple[str, str] | None = None) -> dict[str, Any]:
    """OTLP/HTTP receiver -> batch -> kafka exporter, one pipeline per ``{topic: (encoding, port)}``.

    Each pipeline has a receiver on its own port, so a test knows which encoding a span took.
    ``logs_topic`` sends the first receiver's logs there too (``otlp_proto``). Spans and logs are
    both keyed by trace id, so with equal partition counts a trace's spans and its content logs
    share a partition number (what llmwatch's join needs). With one topic this is the config the
    README gives users. ``relay_logs=(source, target)`` adds a kafka receiver reading OTLP logs
    (llmwatch's evaluation records) from ``source`` and exporting them as ``otlp_json`` to
    ``target``: what any backend behind the Collector would receive.

    >>> cfg = collector_config("127.0.0.1:9092", {"otlp_spans": ("otlp_proto", 4318)})
    >>> cfg["exporters"]["kafka/0"]["traces"], cfg["service"]["pipelines"]["traces/0"]["receivers"]
    ({'topic': 'otlp_spans', 'encoding': 'otlp_proto'}, ['otlp/0'])
    """
    receivers: dict[str, Any] = {}
    exporters: dict[str, Any] = {}
    pipes: dict[str, Any] = {}
    for i, (topic, (encoding, port)) in enumerate(pipelines.items()):
        receivers[f"otlp/{i}"] = {"protocols": {"http": {"endpoint": f"127.0.0.1:{port}"}}}
        exporters[f"kafka/{i}"] = {"brokers": brokers.split(","), "traces": {"topic": topic, "encoding": encoding},
                                   "partition_traces_by_id": True}
        pipes[f"traces/{i}"] = {"receivers": [f"otlp/{i}"], "processors": ["batch"], "exporters": [f"kafka/{i}"]}
    if logs_topic:
        exporters["kafka/logs"] = {"brokers": brokers.split(","), "logs": {"topic": logs_topic, "encoding": "otlp_proto"},
                                   "partition_logs_by_trace_id": True}
        pipes["logs"] = {"receivers": ["otlp/0"], "processors": ["batch"], "exporters": ["kafka/logs"]}
    if relay_logs:
        source, target = relay_logs
        receivers["kafka/relay"] = {"brokers": brokers.split(","), "logs": {"topics": [source], "encoding": "otlp_proto"},
                                    "group_id": f"otelcol-relay-{source}", "initial_offset": "earliest"}
        exporters["kafka/relay"] = {"brokers": brokers.split(","), "logs": {"topic": target, "encoding": "otlp_json"}}
        pipes["logs/relay"] = {"receivers": ["kafka/relay"], "processors": ["batch"], "exporters": ["kafka/relay"]}
    return {
        "receivers": receivers,
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": exporters,
        "service": {"telemetry": {"metrics": {"level": "none"}, "logs": {"level": "info"}}, "pipelines": pipes},
    }


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class LocalCollector(LocalProcess):
    """A real Collector receiving OTLP/HTTP on ``127.0.0.1:<free port>`` and exporting to Kafka.

    ``topics`` maps each traces topic to its encoding (``otlp_proto`` or ``otlp_json``): one
    pipeline per topic, each with a receiver of its own (:meth:`traces_url`).
    """

    label = "the Collector"
    log_name = "otelcol.log"
    error = CollectorSetupError

    def __init__(self, brokers: str, topics: dict[str, str] | None = None, *, logs_topic: str = "",
                 relay_logs: tuple[str, str] | None = None, binary: Path | None = None) -> None:
        super().__init__(binary)
        self.brokers = brokers
        self.topics = topics or {"otlp_spans": "otlp_proto"}
        self.logs_topic = logs_topic
        self.relay_logs = relay_logs
        self.ports: dict[str, int] = {}

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

    def default_binary(self) -> Path:
        return ensure_otelcol()

    def launch(self, binary: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        self.ports = {topic: free_port() for topic in self.topics}
        pipelines = {topic: (encoding, self.ports[topic]) for topic, encoding in self.topics.items()}
        config = self.workdir / "otelcol.yaml"
        config.write_text(yaml.safe_dump(collector_config(self.brokers, pipelines, self.logs_topic, self.relay_logs), sort_keys=False))
        return self.popen([str(binary), f"--config={config}"], log)

    def ready(self) -> bool:
        """Ready once the log says so and every OTLP/HTTP port accepts connections (SIGTERM at
        stop makes the Collector flush its exporters)."""
        return "Everything is ready" in tail(self.log_file, 200) and all(map(_port_open, self.ports.values()))
