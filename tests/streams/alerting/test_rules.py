"""Rule YAML validation (errors name the line) and each rule kind's SQL on seeded chDB data."""
from __future__ import annotations

import json

import textwrap
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from streams.alerting import AlertConfigError, AlertRules, evaluate
from streams.alerting.rules import Margin, Rule, parse_duration
from streams.storage.clickhouse import connect, migrate

EXAMPLE = Path(__file__).resolve().parents[3] / "streams" / "alerting" / "alerts.example.yaml"
NOW = float(int(time.time()))  # real time: the tables' TTL would drop rows from long ago

GOOD = """\
channels:
  oncall:
    type: webhook
    url: http://127.0.0.1:9/hook
rules:
  - name: injections
    kind: flagged_rate
    detector: injection
    threshold: 0.05
    window: 5m
    deliveries: [oncall]
"""


def errors_of(text: str, **kw: Any) -> list[str]:
    with pytest.raises(AlertConfigError) as info:
        AlertRules.parse(textwrap.dedent(text), **kw)
    return info.value.errors


def test_example_file_loads() -> None:
    rules = AlertRules.load(EXAMPLE, env={"LLMWATCH_ALERT_SECRET": "hush-123"})
    assert {r.kind for r in rules.rules} == {"flagged_rate", "quality_rate", "drift", "error_rate", "latency_p95",
                                             "cost_per_hour", "rollout_regression"}
    assert rules.channels["oncall"].secret == "hush-123" and "hush-123" not in repr(rules.channels["oncall"])


def test_good_rules_parse_with_defaults() -> None:
    rule = AlertRules.parse(GOOD).rule("injections")
    assert (rule.window_s, rule.threshold, rule.min_events, rule.deliveries) == (300.0, 0.05, 10, ("oncall",))


def test_unknown_kind_names_the_line_and_the_fix() -> None:
    assert errors_of(GOOD.replace("kind: flagged_rate", "kind: flaged_rate")) == [
        "alerts.yaml line 7: rule 'injections': unknown kind 'flaged_rate'; expected one of: flagged_rate, quality_rate, drift, "
        "error_rate, latency_p95, cost_per_hour, rollout_regression (did you mean 'flagged_rate'?)"
    ]


def test_missing_field_names_the_rule_line() -> None:
    (error,) = errors_of(GOOD.replace("    threshold: 0.05\n", ""))
    assert error == "alerts.yaml line 6: rule 'injections': missing required key 'threshold' for kind 'flagged_rate'"


def test_bad_duration_names_the_value_line() -> None:
    (error,) = errors_of(GOOD.replace("window: 5m", "window: 5 minutes"))
    assert error.startswith("alerts.yaml line 10: rule 'injections': bad duration '5 minutes'; write a number with a unit")


def test_unknown_channel_names_the_deliveries_line() -> None:
    (error,) = errors_of(GOOD.replace("deliveries: [oncall]", "deliveries: [oncal]"))
    assert error == ("alerts.yaml line 11: rule 'injections': unknown channel 'oncal' in deliveries; define it under "
                     "'channels:' (known: oncall) (did you mean 'oncall'?)")


def test_duplicate_rule_name_points_at_both() -> None:
    text = GOOD + "  - {name: injections, kind: error_rate, threshold: 0.1}\n"
    assert errors_of(text) == ["alerts.yaml line 12: rule 'injections': duplicate rule name (first at line 6); "
                               "rule names must be unique"]


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD + (
        "  - name: slow\n"             # line 12
        "    kind: latency_p95\n"
        "    threshold_ms: fast\n"     # line 14
        "    colour: red\n"            # line 15
    )
    found = errors_of(text)
    assert len(found) == 2
    assert found[0].startswith("alerts.yaml line 14: rule 'slow': expected a number >= 0, got 'fast'")
    assert found[1].startswith("alerts.yaml line 15: rule 'slow': unknown key 'colour' for kind 'latency_p95'")


def test_group_by_only_accepts_allow_listed_columns() -> None:
    (error,) = errors_of(GOOD.replace("window: 5m", "window: 5m\n    group_by: [service_name, 'x; DROP TABLE t']"))
    assert "line 11" in error and "cannot group by 'x; DROP TABLE t'" in error


def test_unset_secret_env_is_an_error() -> None:
    text = GOOD.replace("url: http://127.0.0.1:9/hook", "url: http://127.0.0.1:9/hook\n    secret_env: HOOK_SECRET")
    (error,) = errors_of(text, env={})
    assert error.startswith("alerts.yaml line 5: channel 'oncall': environment variable HOOK_SECRET")


def test_durations_and_margins() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25
    assert Margin(relative=0.5, absolute=0.02).exceeded(0.04, 0.01)  # +300%, +0.03: both exceeded
    assert not Margin(relative=0.5, absolute=0.02).exceeded(0.025, 0.01)  # +150% but only +0.015
    assert not Margin(relative=0.0).exceeded(1.0, 1.0)  # equal is never worse


# ---- evaluation: one seeded chDB, every kind, a bad key that fires and a good key that does not


def _ts(offset_s: float) -> datetime:
    return datetime.fromtimestamp(NOW + offset_s, timezone.utc)


def seed_calls(client: Any, service: str, n: int, *, errors: int = 0, latency: float = 100.0, cost: float = 0.001,
               version: str = "v1", at: float = -60.0, model: str = "gpt-x", prompt: str = "") -> None:
    rows = [[uuid.uuid4().hex, _ts(at + i * 0.01), service, model, version, latency,
             cost, "error" if i < errors else "ok", prompt] for i in range(n)]
    client.insert("llm_calls", rows, column_names=["event_id", "timestamp", "service_name", "request_model",
                                                  "prompt_version", "latency_ms", "cost_usd", "status", "prompt_name"])


def seed_detections(client: Any, service: str, n: int, *, flagged: int = 0, detector: str = "injection",
                    version: str = "v1", at: float = -60.0, model: str = "gpt-x") -> None:
    rows = [[uuid.uuid4().hex, detector, 1 if i < flagged else 0, _ts(at + i * 0.01), service, model, version]
            for i in range(n)]
    client.insert("detections", rows, column_names=["event_id", "detector", "flagged", "timestamp", "service_name",
                                                   "request_model", "prompt_version"])


def seed_quality(client: Any, service: str, n: int, *, flagged: int = 0, metric: str = "refusal",
                 version: str = "v1", at: float = -60.0, model: str = "gpt-x") -> None:
    """Quality verdicts as the detector stores them; the quality_scores view splits out ``metric``."""
    def evidence(bad: bool) -> str:
        return json.dumps({"evaluations": {metric: {"score": 0.9 if bad else 0.1, "label": "bad" if bad else "ok",
                                                    "explanation": "test", "flagged": bad}}})
    rows = [[uuid.uuid4().hex, "quality", 1 if i < flagged else 0, evidence(i < flagged), _ts(at + i * 0.01), service,
             model, version] for i in range(n)]
    client.insert("detections", rows, column_names=["event_id", "detector", "flagged", "evidence", "timestamp",
                                                   "service_name", "request_model", "prompt_version"])


def seed_drift(client: Any, service: str, drifted: int, signal: str = "latency", at: float = -60.0) -> None:
    client.insert("drift_reports", [[uuid.uuid4().hex, service, "gpt-x", "v1", signal, drifted, 0.001, _ts(at)]],
                  column_names=["report_id", "service_name", "request_model", "prompt_version", "signal",
                                "drifted", "p_value", "window_end"])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    client = connect(f"chdb://{tmp_path_factory.mktemp('alert-eval')}")
    migrate(client, rollup_ttl_days=30)  # 0003 (rollups) needs it until migrate() defaults it
    seed_calls(client, "good", 20)
    seed_calls(client, "bad", 20, errors=5, latency=5000.0, cost=1.0)
    seed_calls(client, "bad", 20, errors=20, at=-3 * 3600)  # outside every window
    seed_detections(client, "good", 20, flagged=0)
    seed_detections(client, "bad", 20, flagged=10)
    seed_detections(client, "few", 3, flagged=3)  # below min_events
    seed_quality(client, "good", 20, flagged=1)
    seed_quality(client, "good", 20, flagged=15, metric="truncation")  # another check: not refusal's business
    seed_quality(client, "bad", 20, flagged=10)
    seed_quality(client, "few", 3, flagged=3)
    seed_drift(client, "good", 0)
    seed_drift(client, "good", 1, at=-3 * 3600)  # drifted, but long ago
    seed_drift(client, "bad", 1)
    # rollouts: v1 first seen 50 min ago, v2 10 min ago
    for service, old, new in [
        ("rollout-worse", {"errors": 0, "prompt": "support_agent"}, {"errors": 10, "prompt": "support_agent"}),
        ("rollout-better", {"errors": 5, "latency": 300.0}, {"errors": 0, "latency": 200.0}),
        ("rollout-equal", {}, {}),
        ("rollout-slow", {"latency": 100.0}, {"latency": 200.0}),
        ("rollout-refuses", {}, {}),
    ]:
        seed_calls(client, service, 20, version="v1", at=-3000, **old)
        seed_calls(client, service, 20, version="v2", at=-600, **new)
    seed_detections(client, "rollout-worse", 20, version="v1", at=-3000)
    seed_detections(client, "rollout-worse", 20, version="v2", at=-600, flagged=8)
    seed_detections(client, "rollout-better", 20, version="v1", at=-3000, flagged=8)
    seed_detections(client, "rollout-better", 20, version="v2", at=-600)
    seed_quality(client, "rollout-refuses", 20, version="v1", at=-3000, flagged=1)
    seed_quality(client, "rollout-refuses", 20, version="v2", at=-600, flagged=6)
    yield client
    client.close()


def firing_by_service(rule: Rule, client: Any) -> dict[str, bool]:
    return {obs.key["service_name"]: obs.firing for obs in evaluate(rule, client, NOW)}


def rule_of(yaml_rule: str) -> Rule:
    return AlertRules.parse("rules:\n  - " + yaml_rule + "\n").rules[0]


@pytest.mark.parametrize("yaml_rule", [
    "{name: r, kind: flagged_rate, detector: injection, threshold: 0.1, window: 5m}",
    "{name: r, kind: error_rate, threshold: 0.1, window: 5m}",
    "{name: r, kind: latency_p95, threshold_ms: 1000, window: 5m}",
    "{name: r, kind: cost_per_hour, threshold_usd: 100, window: 5m}",
    "{name: r, kind: drift, window: 5m}",
    "{name: r, kind: quality_rate, metric: refusal, threshold: 0.1, window: 5m}",
])
def test_kind_fires_on_bad_data_only(seeded: Any, yaml_rule: str) -> None:
    seen = firing_by_service(rule_of(yaml_rule), seeded)
    assert seen["bad"] is True and seen["good"] is False and "few" not in seen


def test_cost_per_hour_scales_the_window() -> None:
    rule = rule_of("{name: r, kind: cost_per_hour, threshold_usd: 100, window: 30m}")
    assert rule.window_s == 1800 and rule.group_by == ("service_name",)


def test_drift_can_be_restricted_to_signals(seeded: Any) -> None:
    assert firing_by_service(rule_of("{name: r, kind: drift, window: 5m, signals: [embedding]}"), seeded) == {}


def test_match_filters_rows(seeded: Any) -> None:
    rule = rule_of("{name: r, kind: error_rate, threshold: 0.1, window: 5m, match: {deployment_environment: prod}}")
    assert firing_by_service(rule, seeded) == {}


def test_rollout_regression_fires_for_a_worse_new_version_only(seeded: Any) -> None:
    rule = rule_of("{name: r, kind: rollout_regression, window: 1h, min_events: 10}")
    observations = {o.key["service_name"]: o for o in evaluate(rule, seeded, NOW)}
    assert {s: o.firing for s, o in observations.items()} == {
        "rollout-worse": True, "rollout-better": False, "rollout-equal": False, "rollout-slow": True,
        "rollout-refuses": True}
    worse = observations["rollout-worse"]
    assert worse.key == {"service_name": "rollout-worse", "request_model": "gpt-x", "prompt_version": "v2"}
    assert worse.details["baseline_version"] == "v1"
    assert {(r["metric"], r.get("detector")) for r in worse.details["regressions"]} == {
        ("error_rate", None), ("flagged_rate", "injection")}
    assert [r["metric"] for r in observations["rollout-slow"].details["regressions"]] == ["latency_p95"]
    refuses = observations["rollout-refuses"]  # 5% -> 30% refusals: the check, and the detector's any-flag rate
    assert {(r["metric"], r.get("check") or r.get("detector")) for r in refuses.details["regressions"]} == {
        ("quality_rate", "refusal"), ("flagged_rate", "quality")}
    assert "quality_rate[refusal] 0.05 -> 0.3" in refuses.summary
    # a stream whose calls name their registry prompt gets the command that rolls it back
    assert worse.details["rollback"] == "llmwatch prompts rollback support_agent --label production"
    assert "; roll back: llmwatch prompts rollback support_agent --label production (" in worse.summary
    assert refuses.details["rollback"] == "" and "roll back" not in refuses.summary


def test_quality_rate_names_a_known_check() -> None:
    assert errors_of("rules:\n  - {name: q, kind: quality_rate, metric: refusals, threshold: 0.1}\n") == [
        "alerts.yaml line 2: rule 'q': unknown quality metric 'refusals'; expected one of: refusal, relevance, "
        "truncation, degenerate, format, language, pii (did you mean 'refusal'?)"]


def test_quality_metrics_are_the_detectors_checks() -> None:
    from detectors.quality import CHECKS
    from streams.alerting.rules import QUALITY_METRICS

    assert QUALITY_METRICS == CHECKS


def test_rollout_margins_are_configurable(seeded: Any) -> None:
    lenient = rule_of("{name: r, kind: rollout_regression, window: 1h, min_events: 10, "
                      "margins: {latency_p95: {relative: 1.5}}}")
    assert firing_by_service(lenient, seeded)["rollout-slow"] is False
    strict_min = rule_of("{name: r, kind: rollout_regression, window: 1h, min_events: 50}")
    assert firing_by_service(strict_min, seeded) == {}
