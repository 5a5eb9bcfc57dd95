"""``llmwatch replay --since T [--until T] [--detector X] [--dry-run]``: re-run detectors on stored calls.

A thin command over :mod:`streams.pipeline.replay` (which explains where the verdicts go and why):
parses the range, opens ClickHouse (one line naming the fix when a worker holds the embedded
engine's folder), draws progress on stderr and prints a summary on stdout.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import time
from contextlib import contextmanager
from enum import Enum
from typing import Any, Callable, Iterator, Optional

import typer

UTC = dt.timezone.utc


class Group(str, Enum):
    injection = "injection"
    grounding = "grounding"
    drift = "drift"
    quality = "quality"


def parse_when(text: str, now: dt.datetime) -> dt.datetime:
    """An ISO-8601 date/time (UTC unless a zone is given) or a duration before ``now`` (30m, 24h, 7d).

    >>> parse_when("2h", dt.datetime(2026, 1, 2, tzinfo=UTC)).isoformat()
    '2026-01-01T22:00:00+00:00'
    >>> parse_when("2026-01-01T12:00", dt.datetime(2026, 1, 2, tzinfo=UTC)).isoformat()
    '2026-01-01T12:00:00+00:00'
    """
    from streams.grafana.report import parse_since, parse_time

    try:
        return now - parse_since(text)
    except ValueError:
        pass
    try:
        return parse_time(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: use an ISO date/time (2026-05-01T12:00) or a duration (30m, 24h, 7d)"
        ) from None


def open_error(dsn: str, exc: Exception, engine_output: str = "") -> str:
    """One line saying why ClickHouse could not be opened and what to do (``engine_output``: what
    the embedded engine wrote to stderr meanwhile)."""
    text = " ".join(str(exc).split())
    if dsn.startswith("chdb://") and "Cannot lock file" in f"{text} {engine_output}":
        folder = dsn[len("chdb://"):]
        return (
            f"error: the embedded ClickHouse folder {folder} is held by another process (a running llmwatch worker?); "
            "fix: stop the worker, run the replay, start the worker again, or point LLMWATCH_CLICKHOUSE_DSN "
            "(or --dsn) at a ClickHouse server, which the worker and a replay can share"
        )
    engine = " ".join(engine_output.split())
    return f"error: {text}" + (f" (engine: {engine})" if engine else "")


@contextmanager
def engine_stderr_captured() -> Iterator[list[str]]:
    """Capture file descriptor 2 into the yielded list (filled on exit): the embedded engine writes
    the cause of an open failure there ("Cannot lock file ..."), not into the exception."""
    import tempfile

    captured: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _progress(err: Any, total: int) -> tuple[Any, Callable[[int], None]]:
    """A context manager and an ``advance(n)``: a rich bar on a terminal, else a line per ~5 %."""
    from contextlib import nullcontext

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if err.is_terminal:
        bar = Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
        task = bar.add_task("replay", total=total)
        return bar, lambda n: bar.advance(task, n)
    state = {"done": 0, "shown": 0, "t0": time.perf_counter()}
    step = max(1, total // 20)

    def advance(n: int) -> None:
        """Count ``n`` more calls; print a line every ``step``."""
        state["done"] += n
        if state["done"] - state["shown"] >= step or state["done"] >= total:
            state["shown"] = state["done"]
            rate = state["done"] / max(time.perf_counter() - state["t0"], 1e-9)
            err.print(f"replay: {state['done']:,}/{total:,} calls ({rate:,.0f} calls/s)", highlight=False)

    return nullcontext(), advance


def open_clickhouse(dsn: str, settings: Any, err: Any, apply_migrations: bool = True) -> Any:
    """A client, migrated unless told not to (``detection_replays`` is created on first use), or
    exit 1 with one line."""
    from streams.storage.clickhouse import ClickHouseUnavailable, connect, migrate

    engine: list[str] = []
    try:
        with engine_stderr_captured() as engine:
            client = connect(dsn)
        if apply_migrations:
            migrate(client, raw_ttl_days=settings.raw_ttl_days, rollup_ttl_days=settings.rollup_ttl_days,
                    cluster=settings.clickhouse_cluster)
    except ClickHouseUnavailable as exc:
        err.print(open_error(dsn, exc, "".join(engine)), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    return client


def summary(stats: Any, names: list[str]) -> str:
    """The closing line: what ran, how fast, what was written."""
    versions = ", ".join(f"{n} {v}" for n, v in stats.versions.items())
    ran = ", ".join(f"{g} {stats.ran.get(g, 0):,}" for g in names)
    return (
        f"replay {stats.replay_id}: {stats.calls:,} calls ({versions}) in {stats.elapsed_s:.1f} s "
        f"({stats.calls_per_s:,.0f} calls/s); calls run (the rest were already replayed): {ran}; "
        f"{stats.rows_written:,} rows written to detection_replays, {stats.rows_rejected} rejected, "
        f"{stats.errors} detector errors"
    )


def _dry_run(client: Any, names: list[str], since_ms: int, until_ms: int, total: int) -> None:
    """Print the range's call count and what is already replayed there."""
    from streams.pipeline.replay import replayed_counts

    print(f"{total:,} calls in range; would run {', '.join(names)} (nothing written)")
    for detector, version, calls in replayed_counts(client, since_ms, until_ms):
        print(f"  already replayed: {detector} {version}: {calls:,} calls")


def replay_command(
    since: str = typer.Option(..., "--since", help="Range start, inclusive: ISO-8601 (UTC unless a zone "
                              "is given) or a duration before now (24h, 7d)."),
    until: Optional[str] = typer.Option(None, "--until", help="Range end, exclusive (same forms); default now."),
    detector: Optional[Group] = typer.Option(None, "--detector", help="Only this detector group "
                                             "(default: LLMWATCH_DETECTORS, or all)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count the calls and the verdicts already replayed; "
                                 "run and write nothing (not even migrations)."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Calls per page (one detector batch, one insert)."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help="ClickHouse DSN (default: $LLMWATCH_CLICKHOUSE_DSN "
                                      "or the embedded engine)."),
) -> None:
    """Re-run detectors on stored calls; verdicts go to detection_replays under the current detector versions."""
    from rich.console import Console

    from streams.config import Settings
    from streams.pipeline import replay as rp

    err = Console(stderr=True)
    now = dt.datetime.now(UTC)
    start, end = parse_when(since, now), parse_when(until, now) if until else now
    if start >= end:
        raise typer.BadParameter(f"--since {start.isoformat()} is not before --until {end.isoformat()}")
    settings = Settings.from_env()
    names = [detector.value] if detector else list(settings.detector_names or rp.GROUPS)
    client = open_clickhouse(dsn or settings.dsn, settings, err, apply_migrations=not dry_run)
    since_ms, until_ms = round(start.timestamp() * 1000), round(end.timestamp() * 1000)
    try:
        total = rp.count_calls(client, since_ms, until_ms)
        err.print(f"replay [{start.isoformat()}, {end.isoformat()}): {total:,} calls; {', '.join(names)}",
                  highlight=False, markup=False)
        if dry_run:
            _dry_run(client, names, since_ms, until_ms, total)
            return
        groups = rp.build_groups(settings, names)
        bar, advance = _progress(err, total)
        with bar:
            stats = rp.replay(client, groups, since_ms, until_ms, page_size=batch_size, on_page=advance)
    finally:
        client.close()
    print(summary(stats, names))


def register(app: typer.Typer) -> None:
    """Add the ``replay`` command to the ``llmwatch`` app."""
    app.command("replay")(replay_command)
