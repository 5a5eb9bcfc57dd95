"""``llmwatch eval {injection|grounding|refusal|drift} FILE.jsonl [--json]``: a detector on a labelled file.

The evaluation itself is :mod:`detectors.evaluation` (pure); this module picks the detector,
draws the progress bar (stderr) and the tables (stdout), and with ``--json`` ends stdout with
one JSON line. A bad file exits with code 2 and a message naming the line and the fix.
``injection`` builds the detector as the worker does (prompt and every context passage,
the app allowlists of ``LLMWATCH_INJECTION_ALLOWLIST``). ``refusal`` scores each row's ``response`` (label 1: the response refuses, fully or partly)
with the refusal classifier of the quality detector, and needs a response on every row.
"""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

METRIC_COLUMNS = ("precision", "recall", "f1", "auroc", "accuracy", "balanced_accuracy", "fpr", "n")


class Task(str, Enum):
    injection = "injection"
    grounding = "grounding"
    refusal = "refusal"
    drift = "drift"


def make_detector(task: str) -> Any:
    """The task's detector with its defaults (imported lazily: models load only when asked)."""
    if task == "injection":
        from streams.config import Settings
        from streams.pipeline.runners import injection_detector

        return injection_detector(Settings.from_env())
    if task == "grounding":
        from detectors.grounding import GroundingDetector

        return GroundingDetector()
    if task == "refusal":
        from detectors.quality import RefusalDetector

        return RefusalDetector()
    from detectors.drift import DriftDetector

    return DriftDetector()


def eval_command(
    task: Task = typer.Argument(..., help="Which detector to evaluate."),
    file: Path = typer.Argument(..., help="JSONL file in the format of ../shared/eval/README.md (the dev sets beside the repository)."),
    json_out: bool = typer.Option(False, "--json", help="End stdout with one JSON line of the results."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Events per detect_batch call."),
) -> None:
    """Evaluate a detector on a labelled JSONL file: metrics (per source) or drift alarm timing."""
    from detectors.evaluation import EvalFileError, evaluate_detection, evaluate_drift, file_kind, json_safe, load_jsonl

    out, err = Console(), Console(stderr=True)
    try:
        rows = load_jsonl(file, file_kind(task.value))
        if task is Task.refusal:
            _require_responses(file, rows)
    except EvalFileError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None

    detector = make_detector(task.value)
    progress = Progress(
        TextColumn(f"{task.value}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
    )
    with progress:
        bar = progress.add_task(task.value, total=len(rows))
        evaluate = evaluate_drift if task is Task.drift else evaluate_detection
        result = evaluate(detector, rows, batch_size=batch_size, on_progress=lambda n: progress.advance(bar, n))

    if task is Task.drift:
        _print_drift(out, file, result)
    else:
        _print_detection(out, file, result)
    if json_out:
        keys = (
            ("alarm", "first_alarm_index", "change_index", "delay", "false_alarms", "events_per_s")
            if task is Task.drift
            else (*METRIC_COLUMNS, "threshold", "events_per_s", "by_source")
        )
        payload = json_safe({k: result[k] for k in keys})
        print(json.dumps(payload, sort_keys=True), flush=True)


def _require_responses(file: Path, rows: list[dict[str, Any]]) -> None:
    """Refusal rows are judged by their response: a row without one is a mistake in the file."""
    from detectors.evaluation import EvalFileError

    for number, row in enumerate(rows, start=1):
        if not isinstance(row.get("response"), str):
            raise EvalFileError(
                f"{file}: row {number} (id {row.get('id', '?')!r}) has no 'response'; fix: refusal rows need the "
                "model's response as a string (label 1 when it refuses, see ../shared/eval/README.md)"
            )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}"
    return str(value)


def _print_detection(out: Console, file: Path, r: dict[str, Any]) -> None:
    table = Table(title=f"{file.name}: n={r['n']}, threshold={_fmt(r['threshold'])}, {r['events_per_s']:.1f} events/s")
    table.add_column("source")
    for col in METRIC_COLUMNS:
        table.add_column(col, justify="right")
    table.add_row("[bold]all[/]", *(_fmt(r[c]) for c in METRIC_COLUMNS))
    for source, m in r["by_source"].items():
        table.add_row(source, *(_fmt(m[c]) for c in METRIC_COLUMNS))
    out.print(table)


def _print_drift(out: Console, file: Path, r: dict[str, Any]) -> None:
    table = Table(title=f"{file.name}: one stream, n={r['n']}, {r['events_per_s']:.1f} events/s")
    for col in ("stream", "alarm", "first alarm index", "change index", "delay", "false alarms"):
        table.add_column(col, justify="right")
    table.add_row(
        file.stem,
        "yes" if r["alarm"] else "no",
        _fmt(r["first_alarm_index"]),
        _fmt(r["change_index"]),
        _fmt(r["delay"]),
        _fmt(r["false_alarms"]),
    )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to the ``llmwatch`` app."""
    app.command("eval")(eval_command)
