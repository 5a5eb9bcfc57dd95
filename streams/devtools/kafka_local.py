"""A real single-node Apache Kafka 4.x broker (KRaft) for development and tests.

The broker runs from jars resolved off Maven Central with the machine's ``mvn``
(no Docker, no tarball download), cached under ``$LLMWATCH_CACHE/kafka/<version>``.
"""
from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
# Kafka's published pom only carries slf4j-api 1.7; this binding routes it to the
# log4j2 that Kafka already depends on (must match that log4j-core version).
LOG4J_VERSION = "2.25.5"
MIN_JAVA = 17
# A dev broker moves little data: C1-only JIT and serial GC roughly halve JVM start
# time on a busy small machine, and leave the cores to the Python side.
DEFAULT_JVM_OPTS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
DEFAULT_DEV_PORT = 9092
STATE_FILE = "kafka.json"

_console = Console(stderr=True)
_T = TypeVar("_T")


class KafkaSetupError(RuntimeError):
    """Kafka could not be provisioned or started; the message says how to fix it."""


# --------------------------------------------------------------------------- jars

def cache_root() -> Path:
    """``$LLMWATCH_CACHE`` or ``~/.cache/llmwatch``."""
    return Path(os.environ.get("LLMWATCH_CACHE", "~/.cache/llmwatch")).expanduser()


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaSetupError(f"java not found: Java {MIN_JAVA}+ required (apt-get install openjdk-17-jre-headless)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        raise KafkaSetupError(f"cannot parse `java -version` output: {out.strip()!r}")
    major = int(match.group(1))
    if major == 1:  # "1.8.0_x" style
        major = int(match.group(2) or 0)
    if major < MIN_JAVA:
        raise KafkaSetupError(f"Java {MIN_JAVA}+ required for Kafka 4, found Java {major} (apt-get install openjdk-17-jre-headless)")
    return java


def _pom(version: str) -> str:
    deps = [("org.apache.kafka", f"kafka_{SCALA_VERSION}", version),
            ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION)]
    body = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>llmwatch.local</groupId><artifactId>kafka-runtime</artifactId><version>1</version>"
        f"<packaging>pom</packaging><dependencies>{body}</dependencies></project>\n"
    )


def ensure_kafka_jars(version: str = KAFKA_VERSION, cache_dir: Path | None = None) -> Path:
    """Return a directory holding Kafka ``version`` and its runtime dependencies.

    Resolved with ``mvn dependency:copy-dependencies`` on first use; later calls
    return at once. A marker file is written only after success, so an
    interrupted download is redone.
    """
    home = (cache_dir or cache_root() / "kafka") / version
    libs, marker = home / "libs", home / ".complete"
    if marker.exists() and libs.is_dir():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    # Serialise concurrent first runs (e.g. parallel test processes).
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and libs.is_dir():
            return libs
        _java()
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaSetupError("mvn not found: install Maven to fetch the Kafka jars (apt-get install maven)")
        shutil.rmtree(libs, ignore_errors=True)
        (home / "pom.xml").write_text(_pom(version))
        cmd = [mvn, "-B", "-q", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
               f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
        with _console.status(f"Fetching Apache Kafka {version} jars from Maven Central (mvn, first run only)..."):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not any(libs.glob(f"kafka_{SCALA_VERSION}-*.jar")):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
            raise KafkaSetupError(
                f"mvn could not resolve org.apache.kafka:kafka_{SCALA_VERSION}:{version} "
                f"(needs access to Maven Central or a mirror in ~/.m2/settings.xml):\n{tail}"
            )
        marker.write_text(version + "\n")
    return libs


# --------------------------------------------------------------------------- helpers

def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True if ``port`` can be bound on 127.0.0.1 (lingering TIME_WAIT connections don't count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Kafka's own listener does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _cluster_id() -> str:
    """A Kafka-style cluster id (base64url of a random UUID, no padding, not starting with '-')."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from sync code, even when called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


# Popen handles of brokers started detached by this process; kept so stop() can reap them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _is_our_broker(pid: int, data_dir: Path) -> bool:
    """Guard against pid reuse: the process must be kafka.Kafka running from ``data_dir``."""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    return b"kafka.Kafka" in cmdline and str(data_dir / "server.properties").encode() in cmdline


def _terminate(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM the broker's process group, SIGKILL it if still alive after ``timeout`` seconds.

    Returns True if it exited on SIGTERM (a clean shutdown).
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                _CHILDREN.pop(pid, None)
                return sig == signal.SIGTERM
            time.sleep(0.1)
    _CHILDREN.pop(pid, None)
    return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- broker

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = OUT
"""


class LocalKafka:
    """A single-node KRaft broker+controller running as a ``java`` subprocess.

    >>> with LocalKafka(Path("/tmp/k")) as kafka:
    ...     print(kafka.bootstrap)
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        version: str = KAFKA_VERSION,
        jvm_opts: Sequence[str] = DEFAULT_JVM_OPTS,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.controller_port: int | None = None
        self.version = version
        self.jvm_opts = list(jvm_opts)
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._cds_dump: Path | None = None

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT`` of the PLAINTEXT listener."""
        if self.port is None:
            raise RuntimeError("broker not started: port not chosen yet")
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """Broker stdout/stderr and WARN+ log4j output."""
        return self.data_dir / "kafka.log"

    def _write_config(self) -> Path:
        assert self.port is not None and self.controller_port is not None
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            # Static voters (not --standalone) so the controller port may change between restarts.
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # LLM events carry prompts and completions: allow up to 8 MiB per batch.
            "message.max.bytes": str(8 * 1024 * 1024),
            # Dev box with few cores: Kafka's defaults (8 io / 3 network threads) only add contention.
            "num.io.threads": "2",
            "num.network.threads": "2",
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        return path

    def _java_cmd(self, libs: Path, *args: str, jvm: list[str], dump_cds: bool = False) -> list[str]:
        # Class-data sharing: the first attached run dumps the loaded classes at exit
        # (promoted in stop()), later JVMs map them and start ~30% faster.
        archive = libs.parent / "kafka.jsa"
        if archive.exists():
            cds = [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
        elif dump_cds:
            self._cds_dump = libs.parent / f"kafka.jsa.{uuid.uuid4().hex}.tmp"
            cds = [f"-XX:ArchiveClassesAtExit={self._cds_dump}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
        else:
            cds = []
        return [_java(), *jvm, *cds, "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                "-cp", str(libs / "*"), *args]

    def _format(self, libs: Path, config: Path) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cmd = self._java_cmd(libs, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config),
                             jvm=["-Xmx256m", *DEFAULT_JVM_OPTS])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise KafkaSetupError(f"kafka StorageTool format failed:\n{(proc.stdout + proc.stderr).strip()[-3000:]}")

    def start(self, timeout: float = 60, detached: bool = False) -> LocalKafka:
        """Format storage if needed, launch the broker and wait until it serves metadata.

        ``detached`` leaves the broker running when this Python process exits.
        """
        if self.is_running():
            return self
        libs = ensure_kafka_jars(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is not None and not port_is_free(self.port):
            # Otherwise readiness could be confirmed by whatever else answers on that port.
            raise KafkaSetupError(f"port {self.port} on 127.0.0.1 is already in use")
        self.port = self.port or free_port()
        self.controller_port = free_port()
        config = self._write_config()
        self._format(libs, config)
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                self._java_cmd(libs, "kafka.Kafka", str(config), jvm=["-Xmx512m", "-Xms256m", *self.jvm_opts],
                               dump_cds=not detached),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True,
            )
        self.pid = self._proc.pid
        _CHILDREN[self.pid] = self._proc
        if not detached:
            atexit.register(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                raise KafkaSetupError(f"Kafka broker exited during startup; tail of {self.log_file}:\n{_tail(self.log_file)}")
            if _port_open(self.port or 0) and run_sync(_has_broker(self.bootstrap)):
                return
            if time.monotonic() > deadline:
                raise KafkaSetupError(f"Kafka broker not ready after {timeout:.0f}s; tail of {self.log_file}:\n{_tail(self.log_file)}")
            time.sleep(0.25)

    def is_running(self) -> bool:
        """True while the broker process is alive."""
        return self.pid is not None and _pid_alive(self.pid)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (clean shutdown), then SIGKILL after ``timeout`` seconds."""
        if self.pid is not None:
            clean = _terminate(self.pid, timeout)
            if self._cds_dump is not None:
                if clean and self._cds_dump.exists():
                    os.replace(self._cds_dump, self._cds_dump.parent / "kafka.jsa")
                self._cds_dump.unlink(missing_ok=True)
                self._cds_dump = None
        # Forget the pid so a later stop() (e.g. the atexit hook) cannot signal a reused one.
        self.pid, self._proc = None, None

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _has_broker(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        return bool((await admin.describe_cluster()).get("brokers"))
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def create_topics_async(bootstrap: str, topics: dict[str, int], timeout: float = 30.0,
                              configs: dict[str, dict[str, str]] | None = None) -> None:
    """Create ``topics`` (name -> partitions, replication factor 1, ``configs[name]`` if given);
    existing topics are fine (and keep their configs)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        pending = dict(topics)
        deadline = time.monotonic() + timeout
        while pending:
            response = await admin.create_topics([NewTopic(n, p, 1, topic_configs=(configs or {}).get(n, {}))
                                                  for n, p in pending.items()])
            for name, code, *rest in response.topic_errors:
                if code == 0 or code == TopicAlreadyExistsError.errno:
                    pending.pop(name, None)
                    continue
                error = for_code(code)
                if not error.retriable or time.monotonic() > deadline:
                    raise KafkaSetupError(f"creating topic {name!r} failed: {error.__name__} {rest[0] if rest else ''}")
            if pending:
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


def create_topics(bootstrap: str, topics: dict[str, int], timeout: float = 30.0,
                  configs: dict[str, dict[str, str]] | None = None) -> None:
    """Sync wrapper of :func:`create_topics_async`; safe to call inside a running event loop."""
    run_sync(create_topics_async(bootstrap, topics, timeout, configs))


# --------------------------------------------------------------------------- dev CLI state

@dataclass
class DevBroker:
    """A broker started by ``llmwatch dev up``, as recorded in ``<data_dir>/kafka.json``."""

    pid: int
    port: int
    data_dir: str
    version: str
    started_at: float
    already_running: bool = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def default_dev_dir() -> Path:
    """``$LLMWATCH_HOME/kafka``, or ``./var/kafka``."""
    return Path(os.environ.get("LLMWATCH_HOME", "var")) / "kafka"


def dev_status(data_dir: Path | None = None) -> DevBroker | None:
    """The broker recorded in ``data_dir`` if it is still running, else None."""
    data_dir = Path(data_dir or default_dev_dir()).resolve()
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        broker = DevBroker(**{k: raw[k] for k in ("pid", "port", "data_dir", "version", "started_at")})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return broker if _is_our_broker(broker.pid, data_dir) else None


def dev_up(data_dir: Path | None = None, port: int | None = None, timeout: float = 90) -> DevBroker:
    """Start a detached broker in ``data_dir`` (or report the one already running there)."""
    data_dir = Path(data_dir or default_dev_dir()).resolve()
    running = dev_status(data_dir)
    if running is not None:
        running.already_running = True
        return running
    if port is None:
        port = DEFAULT_DEV_PORT if port_is_free(DEFAULT_DEV_PORT) else free_port()
    kafka = LocalKafka(data_dir, port=port).start(timeout=timeout, detached=True)
    assert kafka.pid is not None
    broker = DevBroker(pid=kafka.pid, port=port, data_dir=str(data_dir), version=kafka.version, started_at=time.time())
    state = {k: v for k, v in asdict(broker).items() if k != "already_running"}
    (data_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return broker


def dev_down(data_dir: Path | None = None, timeout: float = 20.0) -> DevBroker | None:
    """Stop the broker recorded in ``data_dir``; returns it, or None if none was running."""
    data_dir = Path(data_dir or default_dev_dir()).resolve()
    broker = dev_status(data_dir)
    if broker is not None:
        _terminate(broker.pid, timeout)
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    return broker
