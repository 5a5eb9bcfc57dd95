"""A drift alarm reported twice (by the worker that raised it and by the one that took its key
over from an older checkpoint) is stored once; reports without an alarm are all kept."""
from __future__ import annotations

import asyncio
import datetime as dt


from detectors.drift.detector import DriftReport
from streams.pipeline.drift_reports import DRIFT_REPORT_COLUMNS, DriftReporter
from streams.worker.services import Services

KEY = ("support-bot", "gpt-4o", "v1")
T0 = dt.datetime(2026, 12, 8, 3, 0, tzinfo=dt.timezone.utc)


class OneKey:
    """What DriftReporter.rows reads of a detector: its keys and one report per key."""

    def __init__(self, latency_alarms: int) -> None:
        self.latency_alarms = latency_alarms

    def keys(self) -> list[tuple[str, str, str]]:
        return [KEY]

    def report(self, key: tuple[str, str, str]) -> DriftReport:
        return DriftReport(key=key, n_events=500, policy="sliding", reference_sizes={}, current_sizes={}, p_values={},
                           statistics={}, n_tests={}, n_alarms=0, last_alarm_index=None, last_alarm_signals=(),
                           scalar_alarms={"latency_ms": self.latency_alarms}, scalar_levels={"latency_ms": 900.0})


def test_the_same_alarm_reported_by_two_owners_is_stored_once(services: Services) -> None:
    before = OneKey(latency_alarms=0)
    first_owner, second_owner = DriftReporter(), DriftReporter()
    quiet = first_owner.rows(before, T0)
    second_owner.rows(before, T0)  # the checkpoint the second owner restores: no alarm reported yet
    alarm = OneKey(latency_alarms=1)
    reported = first_owner.rows(alarm, T0 + dt.timedelta(seconds=10))
    again = second_owner.rows(alarm, T0 + dt.timedelta(seconds=40))  # after the takeover
    assert reported[0][5] == again[0][5] == 1 and reported[0][0] == again[0][0]
    later = first_owner.rows(alarm, T0 + dt.timedelta(seconds=70))  # no new alarm: an ordinary report
    assert later[0][5] == 0 and later[0][0] != quiet[0][0]

    sink = services.sink("drift_reports", DRIFT_REPORT_COLUMNS, replay_key=None)
    for rows in (quiet, reported, again, later):
        asyncio.run(services.write(sink, rows))
    counts = services.client.query(
        "SELECT drifted, count() FROM drift_reports FINAL WHERE service_name = {app:String} GROUP BY drifted ORDER BY drifted",
        parameters={"app": KEY[0]},
    ).result_rows
    assert counts == [(0, 2), (1, 1)]
