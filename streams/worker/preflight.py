"""What a worker checks before it joins the consumer group, so that one that cannot start says
why in one line within seconds, instead of crashing inside Faust (or restarting agents forever).

Each check raises :class:`StartupError` with the root cause and the fix; ``llmwatch worker``
prints :func:`one_line` of it and exits with status 2.

    >>> print(one_line(StartupError("cannot reach Kafka at 127.0.0.1:1", "start it with `llmwatch dev up`")))
    llmwatch worker: cannot start: cannot reach Kafka at 127.0.0.1:1; fix: start it with `llmwatch dev up`
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping

from streams.config import Settings

PREFIX = "llmwatch worker:"
REINSTALL = "reinstall from the lock file: `./run.sh demo` (or `uv sync --locked --extra embedded` in a checkout)"
EMBEDDED_FIX = (
    "install the embedded engine (`pip install 'llmwatch[embedded]'`; `./run.sh demo` does) "
    "or point LLMWATCH_CLICKHOUSE_DSN at a ClickHouse server"
)

#: The packages each detector agent imports when it builds its runner.
DETECTOR_MODULES = {
    "injection": "detectors.injection",
    "grounding": "detectors.grounding",
    "drift": "detectors.drift",
    "quality": "detectors.quality",
}


class StartupError(RuntimeError):
    """The worker cannot start: ``cause`` says why, ``fix`` what to do about it."""

    def __init__(self, cause: str, fix: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.cause}; fix: {self.fix}" if self.fix else self.cause


def one_line(exc: BaseException, stage: str = "cannot start") -> str:
    """The single line a worker prints when it cannot start or stops on an error."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{PREFIX} {stage}: {message}"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment, every value checked (each error names its variable)."""
    try:
        settings = Settings.from_env(env)
        settings.detector_names
        settings.group_id  # checks the role
        settings.canary_tokens()
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    if settings.role in ("detect", "store") and not settings.results_topic:
        raise StartupError(
            f"LLMWATCH_ROLE={settings.role} passes verdicts through the results topic, but LLMWATCH_RESULTS_TOPIC is empty",
            "set LLMWATCH_RESULTS_TOPIC (default llm.detections)",
        )
    if settings.alert_rules:
        from streams.alerting.rules import AlertRules

        try:
            AlertRules.load(settings.alert_rules)
        except Exception as exc:
            raise StartupError(
                f"LLMWATCH_ALERT_RULES={settings.alert_rules}: {exc}", "correct the rules file or unset the variable"
            ) from exc
    return settings


def check_kafka(settings: Settings, timeout_s: float = 10.0) -> None:
    """Create the topics (existing ones are kept): proves the broker answers."""
    from streams.kafka.topics import ensure_topics

    try:
        ensure_topics(settings, timeout_s=timeout_s)
    except Exception as exc:
        raise StartupError(
            f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}",
            "start a broker (`llmwatch dev up`) or set LLMWATCH_KAFKA to a reachable one",
        ) from exc


def check_clickhouse(settings: Settings) -> None:
    """The embedded engine is installed, or the ClickHouse server answers."""
    dsn = settings.dsn
    if dsn.startswith("chdb://"):
        try:
            importlib.import_module("chdb")
        except ImportError as exc:
            raise StartupError(f"the embedded ClickHouse engine (chdb) is not installed: {exc}", EMBEDDED_FIX) from exc
    from streams.storage.clickhouse import ClickHouseUnavailable, connect

    try:
        # Embedded: opening takes the folder's lock, so a second worker on it fails here; the
        # client is closed again, and the worker reopens the folder on its ClickHouse thread.
        client = connect(dsn) if dsn.startswith("chdb://") else connect(dsn, connect_timeout=5, send_receive_timeout=10)
        client.query("SELECT 1")
        client.close()
    except ClickHouseUnavailable as exc:
        raise StartupError(str(exc)) from exc
    except Exception as exc:
        raise StartupError(
            f"cannot query ClickHouse at {dsn}: {exc}", "check the server is up and LLMWATCH_CLICKHOUSE_DSN is right"
        ) from exc


def check_detectors(settings: Settings) -> None:
    """Import the enabled detectors and run the embedding model once (it loads, and builds its
    ONNX graph on first use, here rather than on the first event)."""
    names = settings.detector_names
    if not names:
        return
    from detectors.embeddings import FIX, ModelMissingError, default_embedder

    try:
        default_embedder().encode(["llmwatch start-up check"])
    except ModelMissingError as exc:
        raise StartupError(str(exc)) from exc
    except ImportError as exc:
        raise StartupError(f"the embedding model cannot be built: {exc}", REINSTALL) from exc
    except Exception as exc:
        raise StartupError(f"the embedding model cannot be loaded: {type(exc).__name__}: {exc}", FIX) from exc
    # After the model: importing the detectors takes seconds (river brings scipy and pandas),
    # and a broken model is the likelier fault.
    for name in names:
        try:
            importlib.import_module(DETECTOR_MODULES[name])
        except ImportError as exc:
            raise StartupError(f"the {name} detector cannot be imported: {exc}", REINSTALL) from exc


def preflight(env: Mapping[str, str] | None = None) -> Settings:
    """Every check, cheapest first; the settings to run with."""
    settings = load_settings(env)
    if settings.needs_clickhouse:
        check_clickhouse(settings)
    if settings.role in ("all", "detect"):
        check_detectors(settings)
    check_kafka(settings)
    return settings
