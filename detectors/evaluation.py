"""Offline evaluation of a detector on a labelled JSONL file (pure: no CLI, no printing).

Formats (``../shared/eval/README.md``, beside the repository): detection sets have one object per line with
``prompt`` and ``label`` (0/1) and optionally ``id``, ``source``, ``response``, ``context``;
drift streams have ``prompt`` and ``phase`` (0 before the change, 1 after), in time order,
and a file is one stream.

>>> from detectors.base import Detector, Verdict
>>> class Shouty(Detector):
...     name, version = "shouty", "0"
...     def detect(self, e):
...         s = float(e.prompt.isupper())
...         return Verdict(self.name, self.version, s, s >= 0.5, 0.5)
>>> rows = [{"prompt": "HI", "label": 1, "source": "a"}, {"prompt": "hi", "label": 0, "source": "b"}]
>>> r = evaluate_detection(Shouty(), rows)
>>> r["f1"], r["n"], sorted(r["by_source"])
(1.0, 2, ['a', 'b'])
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from detectors.base import Detector, Event, Verdict
from detectors.metrics import binary_metrics

TASKS = ("injection", "grounding", "drift")
DETECTION_KEYS = ("prompt", "label")
DRIFT_KEYS = ("prompt", "phase")
DRIFT_STREAM_APP = "eval"

Progress = Callable[[int], None]


class EvalFileError(ValueError):
    """A bad evaluation file; the message names the file, the line and the fix."""


def load_jsonl(path: str | Path, kind: str) -> list[dict[str, Any]]:
    """Read and validate an evaluation file; ``kind`` is ``"detection"`` or ``"drift"``."""
    if kind not in ("detection", "drift"):
        raise ValueError(f"kind must be 'detection' or 'drift', got {kind!r}")
    p = Path(path)
    if not p.is_file():
        raise EvalFileError(f"{p}: no such file; fix: pass the path of a JSONL file (the dev sets are in ../shared/eval/, beside the repository)")
    required = DETECTION_KEYS if kind == "detection" else DRIFT_KEYS
    target = "label" if kind == "detection" else "phase"
    rows = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalFileError(
                    f"{p}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                    "fix: write one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise EvalFileError(f"{p}:{lineno}: expected a JSON object, got {type(row).__name__}; fix: one object per line")
            missing = [k for k in required if k not in row]
            if missing:
                raise EvalFileError(
                    f"{p}:{lineno}: missing key(s) {', '.join(missing)}; fix: every {kind} row needs "
                    f"{', '.join(required)} (see ../shared/eval/README.md)"
                )
            if not isinstance(row["prompt"], str):
                raise EvalFileError(f"{p}:{lineno}: 'prompt' must be a string, got {row['prompt']!r}")
            if row[target] not in (0, 1) or isinstance(row[target], bool):
                raise EvalFileError(f"{p}:{lineno}: {target!r} must be 0 or 1, got {row[target]!r}")
            if row.get("response") is not None and not isinstance(row["response"], str):
                raise EvalFileError(f"{p}:{lineno}: 'response' must be a string or null, got {row['response']!r}")
            ctx = row.get("context")
            if ctx is not None and not (isinstance(ctx, list) and all(isinstance(c, str) for c in ctx)):
                raise EvalFileError(f"{p}:{lineno}: 'context' must be a list of strings or null, got {ctx!r}")
            rows.append(row)
    if not rows:
        raise EvalFileError(f"{p}: no rows; fix: the file must hold at least one JSON object line")
    return rows


def row_to_event(row: dict[str, Any], index: int = 0, stream_app: str | None = None) -> Event:
    """An :class:`Event` from an evaluation row (``stream_app`` puts every row on one stream key)."""
    ctx = row.get("context")
    return Event(
        prompt=row["prompt"],
        response=row.get("response"),
        context=tuple(ctx) if ctx is not None else None,
        event_id=str(row.get("id", index)),
        app=stream_app if stream_app is not None else str(row.get("source", "")),
    )


def run_detector(
    detector: Detector, events: Sequence[Event], batch_size: int = 64, on_progress: Progress | None = None
) -> tuple[list[Verdict], float]:
    """Verdicts for ``events`` in order (``detect_batch`` per batch) and the seconds it took."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    verdicts: list[Verdict] = []
    start = time.perf_counter()
    for i in range(0, len(events), batch_size):
        batch = events[i : i + batch_size]
        verdicts.extend(detector.detect_batch(batch))
        if on_progress is not None:
            on_progress(len(batch))
    return verdicts, time.perf_counter() - start


def evaluate_detection(
    detector: Detector, rows: Sequence[dict[str, Any]], batch_size: int = 64, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Metrics overall and per ``source`` (at the detector's own threshold and flags) and events/s."""
    events = [row_to_event(r, i) for i, r in enumerate(rows)]
    verdicts, seconds = run_detector(detector, events, batch_size, on_progress)
    labels = [int(r["label"]) for r in rows]
    threshold = verdicts[0].threshold if verdicts else float("nan")
    result: dict[str, Any] = _metrics(labels, verdicts, threshold)
    by_source: dict[str, Any] = {}
    sources = [str(r.get("source", "unknown")) for r in rows]
    for source in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == source]
        by_source[source] = _metrics([labels[i] for i in idx], [verdicts[i] for i in idx], threshold)
    result["events_per_s"] = len(events) / seconds if seconds > 0 else float("inf")
    result["by_source"] = by_source
    return result


def _metrics(labels: list[int], verdicts: Sequence[Verdict], threshold: float) -> dict[str, Any]:
    return binary_metrics(
        labels, [v.score for v in verdicts], threshold=threshold, flags=[v.flagged for v in verdicts]
    )


def evaluate_drift(
    detector: Detector, rows: Sequence[dict[str, Any]], batch_size: int = 64, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Run the whole file as one stream; alarm timing against the change (first phase-1 row).

    ``delay`` is the first alarm at or after the change minus ``change_index`` (None when the
    change was missed or there is no change); ``false_alarms`` counts alarms before the change
    (every alarm when the file has no phase-1 row).
    """
    events = [row_to_event(r, i, stream_app=DRIFT_STREAM_APP) for i, r in enumerate(rows)]
    verdicts, seconds = run_detector(detector, events, batch_size, on_progress)
    phases = [int(r["phase"]) for r in rows]
    change = next((i for i, ph in enumerate(phases) if ph == 1), None)
    alarms = [i for i, v in enumerate(verdicts) if v.flagged]
    limit = change if change is not None else len(rows)
    after = [i for i in alarms if i >= limit]
    return {
        "alarm": bool(alarms),
        "first_alarm_index": alarms[0] if alarms else None,
        "change_index": change,
        "delay": after[0] - change if (after and change is not None) else None,
        "false_alarms": sum(1 for i in alarms if i < limit),
        "alarm_indices": alarms,
        "n": len(rows),
        "events_per_s": len(events) / seconds if seconds > 0 else float("inf"),
    }


def evaluate_file(
    task: str,
    path: str | Path,
    detector: Detector,
    batch_size: int = 64,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Load ``path`` in the format ``task`` needs and evaluate ``detector`` on it."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    data = load_jsonl(path, file_kind(task))
    if task == "drift":
        return evaluate_drift(detector, data, batch_size, on_progress)
    return evaluate_detection(detector, data, batch_size, on_progress)


def file_kind(task: str) -> str:
    """The file format a task reads: ``"drift"`` or ``"detection"``."""
    return "drift" if task == "drift" else "detection"


def json_safe(value: Any) -> Any:
    """NaN/inf become None so the result is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
