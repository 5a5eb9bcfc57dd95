"""Push llmwatch's Grafana objects to a running Grafana, idempotently, through ``grafana-client``.

Objects: one folder, the ClickHouse datasource (from ``dashboards/provisioning/datasources``),
every ``dashboards/*.json``, the alert rules and contact points of
``dashboards/provisioning/alerting/*.yaml`` (Grafana's file-provisioning format, converted to the
provisioning HTTP API's shape). Each object is read first and written only when it differs, so a
second push writes nothing. Objects Grafana loaded from files (provisioned) are read-only there
and are reported as ``skipped``.
"""
from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import niquests
import yaml
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaServerError, GrafanaTimeoutError

JSON = dict[str, Any]

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards"
CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"


class PushError(RuntimeError):
    """The push cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class Change:
    """What the push did to one Grafana object."""

    kind: str
    name: str
    action: str  # created / updated / unchanged / skipped
    detail: str = ""


@dataclass(frozen=True)
class RuleGroup:
    """An alert rule group: evaluation interval plus rules in the provisioning API's shape."""

    name: str
    interval_s: int
    rules: list[JSON]


@dataclass(frozen=True)
class Bundle:
    """Everything one push sends."""

    folder_uid: str
    folder_title: str
    datasource: JSON
    dashboards: list[JSON] = field(default_factory=list)
    rule_groups: list[RuleGroup] = field(default_factory=list)
    contact_points: list[JSON] = field(default_factory=list)


# -- loading the repository's definitions ---------------------------------------------------------

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def duration_s(text: str | int | float) -> float:
    """Seconds in a Grafana/Prometheus duration. ``duration_s("1m30s") == 90``; numbers are seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    text = text.strip()
    if not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h)")
    return sum(int(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(text))


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> list[JSON]:
    """Every ``*.json`` dashboard in ``directory`` (sorted by file name); each needs a uid and a title."""
    dashboards = []
    for path in sorted(directory.glob("*.json")):
        try:
            dash = json.loads(path.read_text())
        except ValueError as exc:
            raise PushError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(dash, dict) or not dash.get("uid") or not dash.get("title"):
            raise PushError(f"{path}: a dashboard needs a fixed 'uid' and a 'title' to be pushed idempotently")
        dashboards.append({k: v for k, v in dash.items() if k not in ("id", "version")})
    return dashboards


def _substitute(value: Any, env: dict[str, Any]) -> Any:
    """``${VAR}`` placeholders as Grafana's provisioning expands them; a whole-string one keeps its type."""
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, str):
        whole = re.fullmatch(r"\$\{(\w+)\}", value)
        if whole:
            return env.get(whole.group(1), "")
        return re.sub(r"\$\{(\w+)\}", lambda m: str(env.get(m.group(1), "")), value)
    return value


def load_datasource(env: dict[str, Any], json_data: JSON | None = None, directory: Path = DASHBOARDS_DIR) -> JSON:
    """The ClickHouse datasource from ``provisioning/datasources/clickhouse.yaml``, placeholders filled
    from ``env`` and ``jsonData`` keys overridden by ``json_data``.

    An empty password leaves ``secureJsonData`` out (Grafana then keeps what it has).
    """
    path = directory / "provisioning" / "datasources" / "clickhouse.yaml"
    spec = yaml.safe_load(path.read_text())["datasources"][0]
    ds = _substitute(spec, env)
    ds["jsonData"] = {**(ds.get("jsonData") or {}), **(json_data or {})}
    ds.setdefault("access", "proxy")
    secure = {k: v for k, v in (ds.pop("secureJsonData", None) or {}).items() if v not in ("", None)}
    if secure:
        ds["secureJsonData"] = secure
    return ds


def _api_rule(rule: JSON, folder_uid: str, group: str) -> JSON:
    """A file-provisioning rule in the provisioning API's shape (with Grafana's defaults filled)."""
    out = {k: v for k, v in rule.items() if k not in ("orgId", "orgID", "folder", "folderUID", "ruleGroup")}
    out.update(folderUID=folder_uid, ruleGroup=group)
    out.setdefault("noDataState", "NoData")
    out.setdefault("execErrState", "Error")
    out["for"] = str(out.get("for") or "0s")
    out.setdefault("annotations", {})
    out.setdefault("labels", {})
    out.setdefault("isPaused", False)
    if not out.get("uid"):
        raise PushError(f"alert rule {rule.get('title')!r} has no uid; give it one so pushes stay idempotent")
    return out


def load_alerting(folder_uid: str, env: Mapping[str, Any], directory: Path = DASHBOARDS_DIR
                  ) -> tuple[list[RuleGroup], list[JSON]]:
    """Rule groups and contact points from ``provisioning/alerting/*.yaml`` (file-provisioning format).

    ``${VAR}`` placeholders are filled from ``env`` (Grafana does that for files; the API does not).
    Every group goes into ``folder_uid`` (the folder this push owns). Notification policies are
    not pushed: the API replaces the whole policy tree.
    """
    groups: list[RuleGroup] = []
    points: list[JSON] = []
    for path in sorted((directory / "provisioning" / "alerting").glob("*.y*ml")):
        spec = _substitute(yaml.safe_load(path.read_text()) or {}, env)
        for group in spec.get("groups") or []:
            rules = [_api_rule(r, folder_uid, group["name"]) for r in group.get("rules") or []]
            groups.append(RuleGroup(group["name"], int(duration_s(group.get("interval", "1m"))), rules))
        for point in spec.get("contactPoints") or []:
            for receiver in point.get("receivers") or []:
                points.append({
                    "uid": receiver["uid"], "name": point["name"], "type": receiver["type"],
                    "settings": receiver.get("settings") or {},
                    "disableResolveMessage": bool(receiver.get("disableResolveMessage", False)),
                })
                if receiver["type"] == "webhook" and not points[-1]["settings"].get("url"):
                    raise PushError(f"contact point {point['name']!r} ({path.name}) has no webhook url. "
                                    "Fix: set LLMWATCH_ALERT_WEBHOOK_URL or pass --webhook-url")
    return groups, points


def load_bundle(datasource_env: dict[str, Any], json_data: JSON | None = None, folder_uid: str = "llmwatch",
                folder_title: str = "llmwatch", directory: Path = DASHBOARDS_DIR,
                alert_env: Mapping[str, Any] | None = None) -> Bundle:
    """Read every definition the push sends from the repository (alerting placeholders from ``alert_env``,
    default the environment)."""
    groups, points = load_alerting(folder_uid, os.environ if alert_env is None else alert_env, directory)
    return Bundle(folder_uid, folder_title, load_datasource(datasource_env, json_data, directory),
                  load_dashboards(directory), groups, points)


# -- comparing ------------------------------------------------------------------------------------

def diff(want: Any, have: Any, *, subset: bool, path: str = "") -> list[str]:
    """Paths where ``have`` differs from ``want``.

    ``subset=True`` ignores keys only ``have`` has (defaults the server adds on save).
    """
    if isinstance(want, dict) and isinstance(have, dict):
        out = []
        for key in want.keys() | ({} if subset else have.keys()):
            out += diff(want.get(key), have.get(key), subset=subset, path=f"{path}.{key}" if path else str(key))
        return sorted(out)
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        return [d for i, (w, h) in enumerate(zip(want, have)) for d in diff(w, h, subset=subset, path=f"{path}[{i}]")]
    return [] if want == have else [path or "(root)"]


def _summary(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (f" (+{len(paths) - 3} more)" if len(paths) > 3 else "")


# -- talking to Grafana ---------------------------------------------------------------------------

def open_api(url: str, token: str | None = None, user: str | None = None, password: str | None = None,
             timeout: float = 10.0) -> GrafanaApi:
    """A ``GrafanaApi`` for ``url``: a bearer token, or basic auth user/password."""
    credential: str | tuple[str, str] | None = token or ((user, password or "") if user else None)
    return GrafanaApi.from_url(url=url, credential=credential, timeout=timeout)


@contextmanager
def grafana_errors(url: str) -> Iterator[None]:
    """Turn transport and auth failures into a ``PushError`` that names the fix."""
    try:
        yield
    except GrafanaClientError as exc:
        if exc.status_code == 401:
            raise PushError(
                f"Grafana at {url} rejected the credentials (401: {_message(exc)}). "
                "Fix: check GRAFANA_TOKEN (a service-account token), or --user/--password"
            ) from exc
        if exc.status_code == 403:
            raise PushError(
                f"Grafana at {url} denied access (403: {_message(exc)}). "
                "Fix: the token's service account needs the Admin role (datasources, alerting)"
            ) from exc
        raise
    except GrafanaTimeoutError as exc:
        raise PushError(f"Grafana at {url} did not answer in time. Fix: is Grafana running at {url}?") from exc
    except (niquests.exceptions.RequestException, GrafanaException) as exc:
        if isinstance(exc, GrafanaServerError):
            raise PushError(f"Grafana at {url} failed: {exc}. Fix: see the Grafana server log") from exc
        errno = re.search(r"\[Errno -?\d+\] ([^')\]]+)", str(exc))
        unresolved = re.search(r"Failed to resolve '([^']+)'", str(exc))
        reason = (errno.group(1) if errno else f"cannot resolve host {unresolved.group(1)}" if unresolved else str(exc))
        raise PushError(
            f"cannot reach Grafana at {url} ({reason}). Fix: is Grafana running at {url}? (set --url or GRAFANA_URL)"
        ) from exc


def _message(exc: GrafanaException) -> str:
    body = exc.response
    return body.get("message", str(body)) if isinstance(body, dict) else (str(body) or exc.message)


def _get(fetch: Callable[[], Any]) -> Any:
    """The object, or ``None`` on 404."""
    try:
        return fetch()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _write(what: str, call: Callable[[], Any], hint: str = "") -> Any:
    """Run a write; a refusal (4xx other than auth) becomes a ``PushError`` naming the object."""
    try:
        return call()
    except GrafanaClientError as exc:
        if exc.status_code in (401, 403):
            raise
        raise PushError(f"Grafana refused to {what} (HTTP {exc.status_code}: {_message(exc)})"
                        + (f". Fix: {hint}" if hint else "")) from exc


# -- one function per object kind -----------------------------------------------------------------

def push_folder(api: GrafanaApi, uid: str, title: str) -> Change:
    """Create the folder, or retitle it if its title changed."""
    have = _get(lambda: api.folder.get_folder(uid))
    if have is None:
        _write(f"create folder {title!r}", lambda: api.folder.create_folder(title, uid=uid),
               f"a folder titled {title!r} may already exist with another uid (file provisioning?): "
               "pass its uid with --folder-uid, or another --folder-title")
        return Change("folder", title, CREATED, f"uid {uid}")
    if have.get("title") == title:
        return Change("folder", title, UNCHANGED)
    _write(f"rename folder {uid}", lambda: api.folder.update_folder(uid, title=title, version=have.get("version")))
    return Change("folder", title, UPDATED, f"title was {have.get('title')!r}")


def push_datasource(api: GrafanaApi, want: JSON) -> Change:
    """Create or update the datasource by uid. Secrets are write-only: only their presence is compared."""
    name, uid = want["name"], want["uid"]
    have = _get(lambda: api.datasource.get_datasource_by_uid(uid))
    if have is None:
        _write(f"create datasource {name!r}", lambda: api.datasource.create_datasource(want),
               f"a datasource named {name!r} may exist with another uid; rename or delete it in Grafana")
        return Change("datasource", name, CREATED, f"uid {uid}")
    changed = diff({k: v for k, v in want.items() if k != "secureJsonData"}, have, subset=True)
    changed += [f"secureJsonData.{k}" for k in want.get("secureJsonData", {})
                if not (have.get("secureJsonFields") or {}).get(k)]
    if not changed:
        return Change("datasource", name, UNCHANGED)
    if have.get("readOnly"):
        return Change("datasource", name, SKIPPED, f"provisioned from files (read-only); differs in {_summary(changed)}")
    _write(f"update datasource {name!r}",
           lambda: api.datasource.update_datasource_by_uid(uid, {**want, "version": have.get("version")}))
    return Change("datasource", name, UPDATED, _summary(changed))


def push_dashboard(api: GrafanaApi, want: JSON, folder_uid: str) -> Change:
    """Create or update one dashboard; an update sends the stored version (optimistic locking)."""
    uid, title = want["uid"], want["title"]
    have = _get(lambda: api.dashboard.get_dashboard(uid))
    payload = {"dashboard": want, "folderUid": folder_uid, "overwrite": False, "message": "llmwatch dashboards push"}
    if have is None:
        saved = _write(f"create dashboard {title!r}", lambda: api.dashboard.update_dashboard(payload),
                       "another dashboard has this title in the folder; rename one of them")
        return Change("dashboard", title, CREATED, f"version {saved.get('version')}")
    meta, stored = have.get("meta") or {}, have.get("dashboard") or {}
    changed = diff(want, {k: v for k, v in stored.items() if k not in ("id", "version")}, subset=False)
    if meta.get("folderUid", "") != folder_uid:
        changed.append(f"folder ({meta.get('folderUid') or 'General'} -> {folder_uid})")
    if not changed:
        return Change("dashboard", title, UNCHANGED, f"version {stored.get('version')}")
    if meta.get("provisioned"):
        return Change("dashboard", title, SKIPPED, f"provisioned from files (read-only); differs in {_summary(changed)}")
    payload["dashboard"] = {**want, "id": stored.get("id"), "version": stored.get("version")}
    saved = _write(f"update dashboard {title!r}", lambda: api.dashboard.update_dashboard(payload),
                   "it was changed in Grafana during the push; run the push again")
    return Change("dashboard", title, UPDATED, f"version {saved.get('version')}: {_summary(changed)}")


def _comparable_rule(rule: JSON) -> JSON:
    return {**rule, "for": duration_s(rule.get("for") or "0s")}


def push_rule(api: GrafanaApi, want: JSON) -> Change:
    """Create or update one alert rule by uid (provenance ``api``: locked in the UI, owned by this push)."""
    uid, title = want["uid"], want["title"]
    ap = api.alertingprovisioning
    have = _get(lambda: ap.get_alertrule(uid))
    if have is None:
        _write(f"create alert rule {title!r}", lambda: ap.create_alertrule(want))
        return Change("alert rule", title, CREATED, f"group {want['ruleGroup']}")
    changed = diff(_comparable_rule(want), _comparable_rule(have), subset=True)
    if not changed:
        return Change("alert rule", title, UNCHANGED)
    if have.get("provenance") == "file":
        return Change("alert rule", title, SKIPPED, f"provisioned from files (read-only); differs in {_summary(changed)}")
    _write(f"update alert rule {title!r}", lambda: ap.update_alertrule(uid, want))
    return Change("alert rule", title, UPDATED, _summary(changed))


def push_rule_group(api: GrafanaApi, group: RuleGroup, folder_uid: str) -> Change:
    """Set the group's evaluation interval (rules posted one by one get Grafana's default)."""
    ap = api.alertingprovisioning
    have = _get(lambda: ap.get_rule_group(folder_uid, group.name))
    if have is None:
        return Change("rule group", group.name, SKIPPED, "no rules in the group")
    if int(have.get("interval", 0)) == group.interval_s:
        return Change("rule group", group.name, UNCHANGED, f"every {group.interval_s}s")
    body = {"title": group.name, "folderUid": folder_uid, "interval": group.interval_s, "rules": have.get("rules", [])}
    _write(f"set the interval of rule group {group.name!r}", lambda: ap.update_rule_group(folder_uid, group.name, body))
    return Change("rule group", group.name, UPDATED, f"every {group.interval_s}s (was {have.get('interval')}s)")


def push_contact_point(api: GrafanaApi, want: JSON) -> Change:
    """Create or update one contact point, matched by uid (else by name). Redacted secrets count as equal."""
    name = want["name"]
    ap = api.alertingprovisioning
    found = ap.get_contactpoints(name=name) or []
    have = next((p for p in found if p.get("uid") == want["uid"]), None) or next(iter(found), None)
    if have is None:
        _write(f"create contact point {name!r}", lambda: ap.create_contactpoint(want))
        return Change("contact point", name, CREATED, want["type"])
    settings = {k: (have.get("settings", {}).get(k) if have.get("settings", {}).get(k) == "[REDACTED]" else v)
                for k, v in want["settings"].items()}
    changed = diff({**want, "uid": have["uid"], "settings": settings}, have, subset=True)
    if not changed:
        return Change("contact point", name, UNCHANGED, want["type"])
    if have.get("provenance") == "file":
        return Change("contact point", name, SKIPPED, f"provisioned from files (read-only); differs in {_summary(changed)}")
    _write(f"update contact point {name!r}", lambda: ap.update_contactpoint(have["uid"], {**want, "uid": have["uid"]}))
    return Change("contact point", name, UPDATED, _summary(changed))


def push(api: GrafanaApi, bundle: Bundle, on_change: Callable[[Change], None] = lambda c: None) -> list[Change]:
    """Push the bundle: folder, datasource, dashboards, alert rules and groups, contact points."""
    changes: list[Change] = []

    def record(change: Change) -> None:
        changes.append(change)
        on_change(change)

    record(push_folder(api, bundle.folder_uid, bundle.folder_title))
    record(push_datasource(api, bundle.datasource))
    for dash in bundle.dashboards:
        record(push_dashboard(api, dash, bundle.folder_uid))
    for point in bundle.contact_points:
        record(push_contact_point(api, point))
    for group in bundle.rule_groups:
        for rule in group.rules:
            record(push_rule(api, rule))
        record(push_rule_group(api, group, bundle.folder_uid))
    return changes


def datasource_env(host: str, port: int, user: str, password: str) -> dict[str, Any]:
    """Values for the ``${LLMWATCH_CLICKHOUSE_*}`` placeholders of the datasource provisioning file."""
    return {"LLMWATCH_CLICKHOUSE_HOST": host, "LLMWATCH_CLICKHOUSE_PORT": port,
            "LLMWATCH_CLICKHOUSE_USER": user, "LLMWATCH_CLICKHOUSE_PASSWORD": password}
