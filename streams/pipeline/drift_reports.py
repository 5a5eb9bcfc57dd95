"""Turn the drift detector's per-key summaries into ``drift_reports`` rows, one per signal.

A signal is reported as drifted when it raised an alarm since the previous report of its key,
so each alarm shows up in exactly one report; ``report_id`` is derived from the key, the signal
and the window end, so re-emitting a report replaces it instead of adding one.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Iterable

from detectors.drift import DriftDetector, DriftReport

DRIFT_REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("report_id", "String"),
    ("service_name", "LowCardinality(String)"),
    ("request_model", "LowCardinality(String)"),
    ("prompt_version", "LowCardinality(String)"),
    ("signal", "LowCardinality(String)"),
    ("drifted", "UInt8"),
    ("p_value", "Nullable(Float64)"),
    ("statistic", "Nullable(Float64)"),
    ("reference_size", "UInt32"),
    ("window_size", "UInt32"),
    ("details", "String"),
    ("window_end", "DateTime64(3, 'UTC')"),
)


class DriftReporter:
    """Remembers what each key had alarmed at its last report, to mark only new alarms."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], dict[str, int]] = {}

    def seen(self, key: tuple[str, str, str]) -> dict[str, int] | None:
        """The alarm counts the last report of ``key`` covered (None: never reported here)."""
        return self._seen.get(tuple(key))  # type: ignore[arg-type]

    def remember(self, key: tuple[str, str, str], counts: dict[str, int]) -> None:
        """Take over what another worker's last report of ``key`` covered."""
        self._seen[tuple(key)] = dict(counts)  # type: ignore[index]

    def rows(self, detector: DriftDetector, now: dt.datetime, keys: Iterable[tuple[str, str, str]] | None = None) -> list[list[Any]]:
        """Report rows for ``keys`` (default: every key the detector holds)."""
        out: list[list[Any]] = []
        for key in detector.keys() if keys is None else keys:
            report = detector.report(key)
            out.extend(self._key_rows(report, now))
        return out

    def _key_rows(self, r: DriftReport, now: dt.datetime) -> list[list[Any]]:
        prev = self._seen.get(r.key, {})
        counts = {f"text:{s}": r.n_alarms if s in r.last_alarm_signals else prev.get(f"text:{s}", 0) for s in r.p_values}
        counts.update({f"scalar:{s}": n for s, n in r.scalar_alarms.items()})
        rows = []
        for signal in sorted(set(r.p_values) | set(r.scalar_alarms)):
            is_text = signal in r.p_values
            tag = f"text:{signal}" if is_text else f"scalar:{signal}"
            drifted = counts.get(tag, 0) > prev.get(tag, 0)
            name = f"{signal}_embedding" if is_text else signal
            details = {
                "policy": r.policy,
                "n_events": r.n_events,
                "n_alarms": r.n_alarms,
                "tests": r.n_tests.get(signal) if is_text else None,
            }
            # An alarm's id names the alarm (key, signal, its count), so a worker that took the key
            # over and reports the same alarm again writes the same id, which storage keeps once.
            identity = f"alarm {counts[tag]}" if drifted else now.isoformat()
            report_id = hashlib.blake2b(f"{r.key}|{name}|{identity}".encode(), digest_size=16).hexdigest()
            rows.append([
                report_id,
                r.key[0],
                r.key[1],
                r.key[2],
                name,
                int(drifted),
                r.p_values.get(signal) if is_text else None,
                r.statistics.get(signal) if is_text else r.scalar_levels.get(signal),
                r.reference_sizes.get(signal, 0) if is_text else 0,
                r.current_sizes.get(signal, 0) if is_text else 0,
                json.dumps(details),
                now,
            ])
        self._seen[r.key] = counts
        return rows
