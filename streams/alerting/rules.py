"""Alert rules and delivery channels from YAML, validated with errors that name the line and the fix.

>>> rules = AlertRules.parse('''
... channels:
...   oncall: {type: webhook, url: "http://127.0.0.1:9/hook"}
... rules:
...   - name: injections
...     kind: flagged_rate
...     detector: injection
...     threshold: 0.05
...     deliveries: [oncall]
... ''')
>>> rules.rules[0].window_s, rules.rules[0].group_by
(300.0, ('service_name', 'request_model', 'prompt_version'))
>>> AlertRules.parse("rules:\\n  - {name: x, kind: flaged_rate}\\n")
Traceback (most recent call last):
...
streams.alerting.rules.AlertConfigError: alerts.yaml line 2: rule 'x': unknown kind 'flaged_rate'; expected one of: flagged_rate, quality_rate, drift, error_rate, latency_p95, cost_per_hour, rollout_regression (did you mean 'flagged_rate'?)
"""
from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

KINDS = ("flagged_rate", "quality_rate", "drift", "error_rate", "latency_p95", "cost_per_hour", "rollout_regression")
CHANNEL_TYPES = ("webhook", "slack", "alertmanager")
SEVERITIES = ("info", "warning", "error", "critical")
#: Rollout metrics compared between prompt versions; for all of them higher is worse.
ROLLOUT_METRICS = ("flagged_rate", "quality_rate", "error_rate", "latency_p95", "mean_cost")
#: The quality detector's checks (``quality_scores.metric``; ``detectors.quality.CHECKS``, not imported
#: here so that loading alert rules needs no model code).
QUALITY_METRICS = ("refusal", "relevance", "truncation", "degenerate", "format", "language", "pii")

# Identifiers that may appear in SQL (GROUP BY / match filters), per source table. Anything else
# is rejected at load time, so evaluation never formats user text into a query.
CALL_COLUMNS = (
    "service_name", "deployment_environment", "request_model", "prompt_version",
    "prompt_name", "provider_name", "operation_name",
)
DETECTION_COLUMNS = ("service_name", "deployment_environment", "request_model", "prompt_version")
DRIFT_COLUMNS = ("service_name", "request_model", "prompt_version", "signal")
DEFAULT_GROUP_BY = ("service_name", "request_model", "prompt_version")
_TABLE_COLUMNS = {
    "flagged_rate": DETECTION_COLUMNS,
    "quality_rate": DETECTION_COLUMNS,  # quality_scores carries the same key columns
    "drift": DRIFT_COLUMNS,
    "error_rate": CALL_COLUMNS,
    "latency_p95": CALL_COLUMNS,
    "cost_per_hour": CALL_COLUMNS,
    "rollout_regression": ("deployment_environment",),  # match only; grouping is fixed
}

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class AlertConfigError(ValueError):
    """The alert YAML is invalid; ``errors`` holds one ``file line N: ...`` message per problem."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


def parse_duration(value: Any) -> float:
    """Seconds in a duration: ``"90s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` or a number of seconds.

    >>> parse_duration("1h30m"), parse_duration(45)
    (5400.0, 45.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value.strip()):
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(value.strip()))
    else:
        raise ValueError(f"{value!r} is not a duration")
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a duration")
    return seconds


@dataclass(frozen=True)
class Margin:
    """How much worse a new prompt version may be before a rollout regression fires.

    When both are set, both must be exceeded (a 0.1% -> 0.3% error rate is +200% but noise).

    >>> Margin(relative=0.2).exceeded(new=130.0, old=100.0), Margin(absolute=0.05).exceeded(0.06, 0.02)
    (True, False)
    """

    relative: float | None = None
    absolute: float | None = None

    def limit(self, old: float) -> float:
        """The highest new value that is still acceptable."""
        limits = []
        if self.relative is not None:
            limits.append(old * (1.0 + self.relative))
        if self.absolute is not None:
            limits.append(old + self.absolute)
        return max(limits) if limits else old

    def exceeded(self, new: float, old: float) -> bool:
        """``new`` is worse than ``old`` by more than this margin (equal or better never is)."""
        return new > old and new > self.limit(old)


DEFAULT_MARGINS: dict[str, Margin] = {
    "flagged_rate": Margin(absolute=0.05),
    "quality_rate": Margin(absolute=0.05),  # per check: refusal, truncation, format failures...
    "error_rate": Margin(absolute=0.02),
    "latency_p95": Margin(relative=0.2),
    "mean_cost": Margin(relative=0.2),
}


@dataclass(frozen=True)
class Channel:
    """Where notifications go. ``secret`` signs bodies (HMAC-SHA256); it is never printed."""

    name: str
    type: str
    url: str
    secret: str | None = field(default=None, repr=False)
    timeout_s: float = 5.0
    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    give_up_after_s: float = 86400.0
    line: int = 0


@dataclass(frozen=True)
class Rule:
    """One validated alert rule. Kind-specific fields keep their defaults for other kinds.

    ``threshold`` is a fraction (flagged_rate, quality_rate, error_rate), milliseconds (latency_p95), USD per
    hour (cost_per_hour) or 0 (drift, rollout_regression: any drifted report / regression fires).
    """

    name: str
    kind: str
    severity: str = "warning"
    for_s: float = 0.0
    cooldown_s: float = 3600.0
    labels: Mapping[str, str] = field(default_factory=dict)
    deliveries: tuple[str, ...] = ()
    description: str = ""
    window_s: float = 300.0
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    match: Mapping[str, str] = field(default_factory=dict)
    threshold: float = 0.0
    min_events: int = 1
    detector: str = ""
    metric: str = ""  # quality_rate: one of QUALITY_METRICS
    signals: tuple[str, ...] = ()
    detectors: tuple[str, ...] = ()
    lookback_s: float = 7 * 86400.0
    margins: Mapping[str, Margin] = field(default_factory=lambda: dict(DEFAULT_MARGINS))
    line: int = 0


@dataclass(frozen=True)
class AlertRules:
    """A validated alert configuration: rules in file order and channels by name."""

    rules: tuple[Rule, ...]
    channels: Mapping[str, Channel]
    generator_url: str = ""
    source: str = "alerts.yaml"

    @classmethod
    def load(cls, path: str | Path, env: Mapping[str, str] | None = None) -> "AlertRules":
        """Read and validate a rules file; ``env`` resolves ``secret_env`` (default ``os.environ``)."""
        path = Path(path)
        return cls.parse(path.read_text(), source=path.name, env=env)

    @classmethod
    def parse(cls, text: str, source: str = "alerts.yaml", env: Mapping[str, str] | None = None) -> "AlertRules":
        """Validate YAML text; raises :class:`AlertConfigError` listing every problem by line."""
        return _Parser(source, os.environ if env is None else env).parse(text)

    def rule(self, name: str) -> Rule:
        """The rule called ``name``."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)


class _Invalid(Exception):
    """One field problem; the parser turns it into a line-numbered message."""

    def __init__(self, node: Node | None, problem: str):
        super().__init__(problem)
        self.node = node
        self.problem = problem


def _line(node: Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _hint(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _one_of(node: Node, what: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _Invalid(node, f"unknown {what} {value!r}; expected one of: {', '.join(choices)}" + _hint(str(value), choices))
    return value


def _scalar(node: Node) -> Any:
    if not isinstance(node, ScalarNode):
        raise _Invalid(node, "expected a single value, not a list or mapping")
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _mapping(node: Node, what: str) -> dict[str, tuple[Node, Node]]:
    """``{key: (key_node, value_node)}``; duplicate keys are an error (YAML would keep the last)."""
    if not isinstance(node, MappingNode):
        raise _Invalid(node, f"{what} must be a mapping of key: value")
    out: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node)
        if not isinstance(key, str):
            raise _Invalid(key_node, f"{what} keys must be strings, got {key!r}")
        if key in out:
            raise _Invalid(key_node, f"duplicate key {key!r} in {what} (first at line {_line(out[key][0])}); keep one")
        out[key] = (key_node, value_node)
    return out


def _string(node: Node) -> str:
    value = _scalar(node)
    if not isinstance(value, str) or not value:
        raise _Invalid(node, f"expected a non-empty string, got {value!r}")
    return value


def _name(node: Node) -> str:
    value = _string(node)
    if not _NAME.match(value):
        raise _Invalid(node, f"name {value!r} may only use letters, digits, '_', '.', ':' and '-'")
    return value


def _duration(node: Node) -> float:
    value = _scalar(node)
    try:
        return parse_duration(value)
    except ValueError:
        raise _Invalid(node, f"bad duration {value!r}; write a number with a unit, e.g. 30s, 5m, 1h, 1d") from None


def _positive_duration(node: Node) -> float:
    seconds = _duration(node)
    if seconds <= 0:
        raise _Invalid(node, "the duration must be greater than 0")
    return seconds


def _number(node: Node, low: float = 0.0, high: float = math.inf) -> float:
    value = _scalar(node)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        bounds = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise _Invalid(node, f"expected a number {bounds}, got {value!r}")
    return float(value)


def _fraction(node: Node) -> float:
    return _number(node, 0.0, 1.0)


def _count(node: Node) -> int:
    value = _scalar(node)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Invalid(node, f"expected a whole number >= 1, got {value!r}")
    return value


def _retries(node: Node) -> int:
    value = _scalar(node)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
        raise _Invalid(node, f"expected a whole number between 0 and 20, got {value!r}")
    return value


def _strings(node: Node) -> tuple[str, ...]:
    if isinstance(node, ScalarNode):
        return (_string(node),)
    if not isinstance(node, SequenceNode):
        raise _Invalid(node, "expected a list of strings")
    return tuple(_string(item) for item in node.value)


def _labels(node: Node) -> dict[str, str]:
    out = {}
    for key, (_, value_node) in _mapping(node, "labels").items():
        value = _scalar(value_node)
        if isinstance(value, (dict, list)) or value is None:
            raise _Invalid(value_node, f"label {key!r} must be a string")
        out[key] = str(value)
    return out


_Field = Callable[[Node], Any]
_COMMON: dict[str, tuple[str, _Field]] = {  # yaml key -> (Rule attribute, parser)
    "name": ("name", _name),
    "kind": ("kind", lambda n: n),
    "severity": ("severity", lambda n: _one_of(n, "severity", _scalar(n), SEVERITIES)),
    "for": ("for_s", _duration),
    "cooldown": ("cooldown_s", _duration),
    "labels": ("labels", _labels),
    "deliveries": ("deliveries", _strings),
    "description": ("description", _string),
    "match": ("match", _labels),
}
# kind -> {yaml key: (Rule attribute, parser, required)}
_KIND_FIELDS: dict[str, dict[str, tuple[str, _Field, bool]]] = {
    "flagged_rate": {
        "detector": ("detector", _string, True),
        "window": ("window_s", _positive_duration, False),
        "threshold": ("threshold", _fraction, True),
        "min_events": ("min_events", _count, False),
        "group_by": ("group_by", _strings, False),
    },
    "quality_rate": {
        "metric": ("metric", lambda n: _one_of(n, "quality metric", _scalar(n), QUALITY_METRICS), True),
        "window": ("window_s", _positive_duration, False),
        "threshold": ("threshold", _fraction, True),
        "min_events": ("min_events", _count, False),
        "group_by": ("group_by", _strings, False),
    },
    "drift": {
        "window": ("window_s", _positive_duration, False),
        "signals": ("signals", _strings, False),
        "group_by": ("group_by", _strings, False),
    },
    "error_rate": {
        "window": ("window_s", _positive_duration, False),
        "threshold": ("threshold", _fraction, True),
        "min_events": ("min_events", _count, False),
        "group_by": ("group_by", _strings, False),
    },
    "latency_p95": {
        "window": ("window_s", _positive_duration, False),
        "threshold_ms": ("threshold", _number, True),
        "min_events": ("min_events", _count, False),
        "group_by": ("group_by", _strings, False),
    },
    "cost_per_hour": {
        "window": ("window_s", _positive_duration, False),
        "threshold_usd": ("threshold", _number, True),
        "group_by": ("group_by", _strings, False),
    },
    "rollout_regression": {
        "window": ("window_s", _positive_duration, False),
        "lookback": ("lookback_s", _positive_duration, False),
        "min_events": ("min_events", _count, False),
        "detectors": ("detectors", _strings, False),
        "margins": ("margins", lambda n: n, False),
    },
}
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "flagged_rate": {"window_s": 300.0, "min_events": 10},
    "quality_rate": {"window_s": 300.0, "min_events": 10},
    "drift": {"window_s": 900.0},
    "error_rate": {"window_s": 300.0, "min_events": 10},
    "latency_p95": {"window_s": 300.0, "min_events": 10},
    "cost_per_hour": {"window_s": 3600.0, "group_by": ("service_name",)},
    "rollout_regression": {"window_s": 3600.0, "min_events": 30, "group_by": ("service_name", "request_model")},
}
_CHANNEL_FIELDS: dict[str, tuple[str, _Field]] = {
    "type": ("type", lambda n: _one_of(n, "channel type", _scalar(n), CHANNEL_TYPES)),
    "url": ("url", _string),
    "secret": ("secret", _string),
    "secret_env": ("secret", lambda n: n),
    "timeout": ("timeout_s", _positive_duration),
    "max_retries": ("max_retries", _retries),
    "backoff": ("backoff_s", _duration),
    "max_backoff": ("max_backoff_s", _duration),
    "give_up_after": ("give_up_after_s", _positive_duration),
}
_DEFAULT_KEYS = ("severity", "for", "cooldown", "labels", "deliveries")


class _Parser:
    def __init__(self, source: str, env: Mapping[str, str]):
        self.source = source
        self.env = env
        self.errors: list[str] = []
        self.broken_channels: set[str] = set()  # already reported; rules using them get no 2nd error

    def error(self, node: Node | None, where: str, problem: str) -> None:
        prefix = f"{self.source} line {_line(node)}: " if node is not None else f"{self.source}: "
        self.errors.append(prefix + (f"{where}: " if where else "") + problem)

    def parse(self, text: str) -> AlertRules:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise AlertConfigError([f"{self.source}{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
        if root is None:
            raise AlertConfigError([f"{self.source}: the file is empty; add a 'rules:' list"])
        try:
            top = _mapping(root, "the top level")
        except _Invalid as exc:
            raise AlertConfigError([f"{self.source} line {_line(exc.node)}: {exc.problem}"]) from None
        for key, (key_node, _) in top.items():
            if key not in ("channels", "rules", "defaults", "generator_url"):
                choices = ("channels", "rules", "defaults", "generator_url")
                self.error(key_node, "", f"unknown section {key!r}; expected one of: {', '.join(choices)}" + _hint(key, choices))
        channels = self.channels(top["channels"][1]) if "channels" in top else {}
        defaults = self.defaults(top["defaults"][1]) if "defaults" in top else {}
        generator_url = ""
        if "generator_url" in top:
            try:
                generator_url = _string(top["generator_url"][1])
            except _Invalid as exc:
                self.error(exc.node, "generator_url", exc.problem)
        rules: list[Rule] = []
        if "rules" not in top:
            self.error(root, "", "missing 'rules:' section; add a list of rules")
        elif not isinstance(top["rules"][1], SequenceNode):
            self.error(top["rules"][1], "rules", "must be a list ('- name: ...' items)")
        else:
            seen: dict[str, int] = {}
            for index, node in enumerate(top["rules"][1].value, start=1):
                rule = self.rule(node, index, defaults, channels)
                if rule is None:
                    continue
                if rule.name in seen:
                    self.error(node, f"rule {rule.name!r}", f"duplicate rule name (first at line {seen[rule.name]}); rule names must be unique")
                    continue
                seen[rule.name] = rule.line
                rules.append(rule)
        if self.errors:
            raise AlertConfigError(self.errors)
        return AlertRules(tuple(rules), channels, generator_url, self.source)

    def defaults(self, node: Node) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            items = _mapping(node, "defaults")
        except _Invalid as exc:
            self.error(exc.node, "defaults", exc.problem)
            return out
        for key, (key_node, value_node) in items.items():
            if key not in _DEFAULT_KEYS:
                self.error(key_node, "defaults", f"unknown key {key!r}; expected one of: {', '.join(_DEFAULT_KEYS)}" + _hint(key, _DEFAULT_KEYS))
                continue
            attr, parse = _COMMON[key]
            try:
                out[attr] = (parse(value_node), value_node)
            except _Invalid as exc:
                self.error(exc.node, "defaults", exc.problem)
        return out

    def channels(self, node: Node) -> dict[str, Channel]:
        out: dict[str, Channel] = {}
        try:
            items = _mapping(node, "channels")
        except _Invalid as exc:
            self.error(exc.node, "channels", exc.problem)
            return out
        for name, (key_node, value_node) in items.items():
            where = f"channel {name!r}"
            try:
                fields = _mapping(value_node, where)
                values: dict[str, Any] = {}
                for key, (fkey_node, fvalue_node) in fields.items():
                    if key not in _CHANNEL_FIELDS:
                        raise _Invalid(fkey_node, f"unknown key {key!r}; expected one of: {', '.join(_CHANNEL_FIELDS)}" + _hint(key, list(_CHANNEL_FIELDS)))
                    attr, parse = _CHANNEL_FIELDS[key]
                    values[attr] = parse(fvalue_node)
                    if key == "secret_env":
                        var = _string(fvalue_node)
                        if not self.env.get(var):
                            raise _Invalid(fvalue_node, f"environment variable {var} (secret_env) is not set; export it or use 'secret:'")
                        values["secret"] = self.env[var]
                for required in ("type", "url"):
                    if required not in values:
                        raise _Invalid(key_node, f"missing required key {required!r}")
                if not str(values["url"]).startswith(("http://", "https://")):
                    raise _Invalid(fields["url"][1], f"url {values['url']!r} must start with http:// or https://")
                out[name] = Channel(name=name, line=_line(key_node), **values)
            except _Invalid as exc:
                self.error(exc.node, where, exc.problem)
                self.broken_channels.add(name)
        return out

    def rule(self, node: Node, index: int, defaults: dict[str, Any], channels: dict[str, Channel]) -> Rule | None:
        where = f"rule #{index}"
        try:
            fields = _mapping(node, where)
            if "name" in fields:
                name = _name(fields["name"][1])
                where = f"rule {name!r}"
            else:
                raise _Invalid(node, "missing required key 'name'; give every rule a unique name")
            if "kind" not in fields:
                raise _Invalid(node, f"missing required key 'kind'; expected one of: {', '.join(KINDS)}")
            kind = _one_of(fields["kind"][1], "kind", _scalar(fields["kind"][1]), KINDS)
            values: dict[str, Any] = {attr: value for attr, (value, _) in defaults.items()}
            values.update(_KIND_DEFAULTS[kind])
            kind_fields = _KIND_FIELDS[kind]
            allowed = list(_COMMON) + list(kind_fields)
            ok = True
            for key, (key_node, value_node) in fields.items():
                try:
                    if key in _COMMON:
                        attr, parse = _COMMON[key]
                    elif key in kind_fields:
                        attr, parse, _ = kind_fields[key]
                    else:
                        raise _Invalid(key_node, f"unknown key {key!r} for kind {kind!r}; expected one of: {', '.join(allowed)}" + _hint(key, allowed))
                    values[attr] = parse(value_node)
                except _Invalid as exc:
                    self.error(exc.node, where, exc.problem)
                    ok = False
            for key, (_, _, required) in kind_fields.items():
                if required and key not in fields:
                    self.error(node, where, f"missing required key {key!r} for kind {kind!r}")
                    ok = False
            if not ok:
                return None
            self.check_columns(kind, fields, values)
            if kind == "rollout_regression":
                values["margins"] = self.margins(fields.get("margins", (None, None))[1])
            deliveries_node = fields["deliveries"][1] if "deliveries" in fields else defaults.get("deliveries", (None, node))[1]
            for channel in values.get("deliveries", ()):
                if channel not in channels and channel not in self.broken_channels:
                    known = sorted(channels)
                    raise _Invalid(deliveries_node, f"unknown channel {channel!r} in deliveries; "
                                   f"define it under 'channels:' (known: {', '.join(known) or 'none'})" + _hint(channel, known))
            return Rule(kind=kind, line=_line(node), **{k: v for k, v in values.items() if k != "kind"})
        except _Invalid as exc:
            self.error(exc.node, where, exc.problem)
            return None

    def check_columns(self, kind: str, fields: dict[str, tuple[Node, Node]], values: dict[str, Any]) -> None:
        allowed = _TABLE_COLUMNS[kind]
        if "group_by" in fields:
            if kind == "rollout_regression":
                raise _Invalid(fields["group_by"][0], "rollout_regression always groups by service_name, request_model")
            if not values["group_by"]:
                raise _Invalid(fields["group_by"][1], "group_by needs at least one column")
            for column in values["group_by"]:
                if column not in allowed:
                    raise _Invalid(fields["group_by"][1], f"cannot group by {column!r}; expected any of: {', '.join(allowed)}" + _hint(column, allowed))
            if len(set(values["group_by"])) != len(values["group_by"]):
                raise _Invalid(fields["group_by"][1], "group_by lists a column twice")
        for column in values.get("match", {}):
            if column not in allowed:
                raise _Invalid(fields["match"][1], f"cannot match on {column!r}; expected any of: {', '.join(allowed)}" + _hint(column, allowed))

    def margins(self, node: Node | None) -> dict[str, Margin]:
        margins = dict(DEFAULT_MARGINS)
        if node is None:
            return margins
        for metric, (key_node, value_node) in _mapping(node, "margins").items():
            _one_of(key_node, "margin metric", metric, ROLLOUT_METRICS)
            if isinstance(value_node, ScalarNode) and _scalar(value_node) in (None, False):
                # `latency_p95: off` (YAML reads off as false) skips the metric
                del margins[metric]
                continue
            parts = _mapping(value_node, f"margin {metric!r}")
            extra = set(parts) - {"relative", "absolute"}
            if extra or not parts:
                bad = sorted(extra)[0] if extra else None
                raise _Invalid(parts[bad][0] if bad else value_node,
                               "a margin takes 'relative' (fraction, 0.2 = +20%) and/or 'absolute' (metric units), or 'off'")
            margins[metric] = Margin(
                relative=_number(parts["relative"][1]) if "relative" in parts else None,
                absolute=_number(parts["absolute"][1]) if "absolute" in parts else None,
            )
        return margins
