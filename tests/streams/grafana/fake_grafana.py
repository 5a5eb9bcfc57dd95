"""A local fake of exactly the Grafana HTTP API endpoints ``llmwatch dashboards push`` uses.

A real HTTP server on 127.0.0.1 (``ThreadingHTTPServer``) with Grafana's semantics for those
endpoints (legacy ``/api`` routes, Grafana 10/11):

* auth: ``Authorization: Bearer <token>`` or basic auth, otherwise 401 with Grafana's JSON error;
  ``/api/health`` is public, as in Grafana;
* folders: duplicate uid or title -> 409; update with a stale ``version`` -> 412 version-mismatch;
* dashboards (``POST /api/dashboards/db``): ``dashboard.title`` required, ``uid`` <= 40 chars,
  ``folderUid`` must exist; the version increments on every save; a stale ``version`` without
  ``overwrite`` -> 412 version-mismatch; another dashboard with the same title in the folder ->
  412 name-exists; a file-provisioned dashboard cannot be saved (400); a save with a new
  ``folderUid`` moves the dashboard;
* datasources: duplicate name or uid -> 409; read-only (file-provisioned) -> 403 on update;
  ``secureJsonData`` is write-only (GET shows ``secureJsonFields``); version checked when sent;
* alert rules (provisioning API): ``title/folderUID/ruleGroup/condition/data/for/noDataState/
  execErrState`` validated, ``condition`` must name a ``refId``; ``provenance`` is ``api`` unless
  ``X-Disable-Provenance`` is sent, and may not change once set; queries get ``intervalMs`` and
  ``maxDataPoints`` defaults (Grafana's AlertQuery.PreSave) and ``for`` is normalised ("300s" ->
  "5m"); rule groups carry the evaluation ``interval`` (default 60 s);
* contact points: known ``type`` and webhook ``settings.url`` required; secure settings redacted.

Every request is logged in ``requests``; every successful non-GET in ``writes`` (so a test can
assert that a second push wrote nothing).
"""
from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]


class ApiError(Exception):
    """An HTTP error answer: status and JSON body (``None`` = empty body)."""

    def __init__(self, status: int, body: JSON | None):
        super().__init__(status, body)
        self.status = status
        self.body = body


def _msg(code: int, message: str, **extra: Any) -> ApiError:
    return ApiError(code, {"message": message, **extra})


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _normalise_duration(text: str) -> str:
    """Prometheus model.Duration round trip, as Grafana stores ``for``: "300s" -> "5m"."""
    if not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", text or ""):
        raise _msg(400, f"invalid duration {text!r}")
    seconds = sum(int(n) * _UNIT_S.get(unit, 0) for n, unit in _DURATION.findall(text))
    if seconds == 0:
        return "0s"
    out = ""
    for unit in ("y", "w", "d", "h", "m", "s"):
        n, seconds = divmod(seconds, _UNIT_S[unit])
        if n:
            out += f"{n}{unit}"
    return out


_NO_DATA_STATES = {"Alerting", "NoData", "OK", "KeepLast"}
_EXEC_ERR_STATES = {"Alerting", "Error", "OK", "KeepLast"}
_CONTACT_TYPES = {"webhook", "email", "slack", "pagerduty", "opsgenie", "teams", "telegram", "discord"}
_SECURE_SETTINGS = {"webhook": {"password", "authorization_credentials"}, "slack": {"url", "token"}}


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., tuple[int, Any]]


@dataclass
class FakeGrafana:
    """In-memory Grafana state plus the HTTP server that exposes it."""

    token: str = "test-token"
    user: str = "admin"
    password: str = "admin"
    folders: dict[str, JSON] = field(default_factory=dict)
    dashboards: dict[str, JSON] = field(default_factory=dict)  # uid -> {"dashboard", "folderUid", "provisioned", ...}
    datasources: dict[str, JSON] = field(default_factory=dict)
    alert_rules: dict[str, JSON] = field(default_factory=dict)
    rule_group_intervals: dict[tuple[str, str], int] = field(default_factory=dict)
    contact_points: dict[str, JSON] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    writes: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 1
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        r = self._route
        self._routes = [
            r("GET", r"/api/health", self._health),
            r("GET", r"/api/folders/(?P<uid>[^/]+)", self._get_folder),
            r("POST", r"/api/folders", self._create_folder),
            r("PUT", r"/api/folders/(?P<uid>[^/]+)", self._update_folder),
            r("GET", r"/api/dashboards/uid/(?P<uid>[^/]+)", self._get_dashboard),
            r("POST", r"/api/dashboards/db", self._save_dashboard),
            r("GET", r"/api/datasources/uid/(?P<uid>[^/]+)", self._get_datasource),
            r("POST", r"/api/datasources", self._create_datasource),
            r("PUT", r"/api/datasources/uid/(?P<uid>[^/]+)", self._update_datasource),
            r("GET", r"/api/v1/provisioning/alert-rules/(?P<uid>[^/]+)", self._get_rule),
            r("POST", r"/api/v1/provisioning/alert-rules", self._create_rule),
            r("PUT", r"/api/v1/provisioning/alert-rules/(?P<uid>[^/]+)", self._update_rule),
            r("GET", r"/api/v1/provisioning/folder/(?P<folder>[^/]+)/rule-groups/(?P<group>[^/]+)", self._get_group),
            r("PUT", r"/api/v1/provisioning/folder/(?P<folder>[^/]+)/rule-groups/(?P<group>[^/]+)", self._put_group),
            r("GET", r"/api/v1/provisioning/contact-points", self._list_contact_points),
            r("POST", r"/api/v1/provisioning/contact-points", self._create_contact_point),
            r("PUT", r"/api/v1/provisioning/contact-points/(?P<uid>[^/]+)", self._update_contact_point),
        ]

    # -- server lifecycle ----------------------------------------------------------------------

    @staticmethod
    def _route(method: str, pattern: str, handler: Callable[..., tuple[int, Any]]) -> _Route:
        return _Route(method, re.compile(pattern + r"/?"), handler)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeGrafana":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeGrafana":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake.dispatch(self.command, self.path, dict(self.headers.items()), raw)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    # -- dispatch ------------------------------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        """Route one request; returns (status, JSON body or None)."""
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append((method, parts.path))
            try:
                route, params = self._match(method, parts.path)
                if route.handler is not self._health:
                    self._authenticate(headers.get("authorization", ""))
                body = self._json_body(raw, headers) if method in ("POST", "PUT") else None
                status, answer = route.handler(body=body, query=query, headers=headers, **params)
            except ApiError as err:
                return err.status, err.body
            except Exception as exc:  # a bug in the fake must show up as a 500, not a hung client
                return 500, {"message": f"fake grafana crashed: {exc!r}"}
            if method != "GET":
                self.writes.append((method, parts.path))
            return status, answer

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]]:
        allowed = False
        for route in self._routes:
            m = route.pattern.fullmatch(path)
            if m:
                allowed = True
                if route.method == method:
                    return route, m.groupdict()
        raise _msg(405, "Method Not Allowed") if allowed else _msg(404, "Not found")

    def _authenticate(self, header: str) -> None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            if value == self.token:
                return
            raise _msg(401, "Invalid API key", messageId="api-key.invalid", statusCode=401, traceID="")
        if scheme.lower() == "basic":
            user, _, password = base64.b64decode(value).decode(errors="replace").partition(":")
            if (user, password) == (self.user, self.password):
                return
            raise _msg(401, "Invalid username or password", messageId="password-auth.failed", statusCode=401, traceID="")
        raise _msg(401, "Unauthorized", messageId="auth.unauthorized", statusCode=401, traceID="")

    @staticmethod
    def _json_body(raw: bytes, headers: dict[str, str]) -> JSON:
        if "application/json" not in headers.get("content-type", ""):
            raise _msg(415, "Unsupported Media Type: use application/json")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise _msg(400, "bad request data") from None
        if not isinstance(body, dict):
            raise _msg(400, "bad request data")
        return body

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # -- health --------------------------------------------------------------------------------

    def _health(self, **_: Any) -> tuple[int, Any]:
        return 200, {"commit": "fake", "database": "ok", "version": "11.3.0"}

    # -- folders -------------------------------------------------------------------------------

    def _get_folder(self, uid: str, **_: Any) -> tuple[int, Any]:
        if uid not in self.folders:
            raise _msg(404, "folder not found", status="not-found")
        return 200, self.folders[uid]

    def _create_folder(self, body: JSON, **_: Any) -> tuple[int, Any]:
        title, uid = body.get("title") or "", body.get("uid") or f"f{self._next_id:08d}"
        if not title.strip():
            raise _msg(400, "folder title cannot be empty")
        if len(uid) > 40:
            raise _msg(400, "uid too long, max 40 characters")
        if uid in self.folders:
            raise _msg(409, "a folder with the same uid already exists")
        if any(f["title"] == title for f in self.folders.values()):
            raise _msg(409, "a folder with the same name already exists")
        now = _now()
        folder = {
            "id": self._new_id(), "uid": uid, "title": title, "url": f"/dashboards/f/{uid}/{_slug(title)}",
            "hasAcl": False, "canSave": True, "canEdit": True, "canAdmin": True, "canDelete": True,
            "createdBy": "admin", "created": now, "updatedBy": "admin", "updated": now, "version": 1,
        }
        self.folders[uid] = folder
        return 200, folder

    def _update_folder(self, uid: str, body: JSON, **_: Any) -> tuple[int, Any]:
        folder = self._get_folder(uid)[1]
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            raise _msg(412, "the folder has been changed by someone else", status="version-mismatch")
        title = body.get("title") or folder["title"]
        if any(f["title"] == title and u != uid for u, f in self.folders.items()):
            raise _msg(409, "a folder with the same name already exists")
        folder.update(title=title, url=f"/dashboards/f/{uid}/{_slug(title)}", version=folder["version"] + 1,
                      updated=_now())
        return 200, folder

    # -- dashboards ----------------------------------------------------------------------------

    def _get_dashboard(self, uid: str, **_: Any) -> tuple[int, Any]:
        stored = self.dashboards.get(uid)
        if stored is None:
            raise _msg(404, "Dashboard not found")
        dash = stored["dashboard"]
        folder = self.folders.get(stored["folderUid"]) if stored["folderUid"] else None
        meta = {
            "type": "db", "canSave": True, "canEdit": True, "canAdmin": True, "canStar": True,
            "slug": _slug(dash["title"]), "url": f"/d/{uid}/{_slug(dash['title'])}",
            "created": stored["created"], "updated": stored["updated"], "createdBy": "admin", "updatedBy": "admin",
            "version": dash["version"], "isFolder": False, "folderId": folder["id"] if folder else 0,
            "folderUid": stored["folderUid"], "folderTitle": folder["title"] if folder else "General",
            "folderUrl": folder["url"] if folder else "", "provisioned": stored["provisioned"],
            "provisionedExternalId": stored.get("externalId", ""),
        }
        return 200, {"dashboard": json.loads(json.dumps(dash)), "meta": meta}

    def _save_dashboard(self, body: JSON, **_: Any) -> tuple[int, Any]:
        dash = body.get("dashboard")
        if not isinstance(dash, dict):
            raise _msg(400, "bad request data")
        dash = json.loads(json.dumps(dash))
        title = (dash.get("title") or "").strip()
        if not title:
            raise _msg(400, "Dashboard title cannot be empty", status="empty-name")
        uid = dash.get("uid") or f"d{self._next_id:08d}"
        if len(uid) > 40:
            raise _msg(400, "uid too long, max 40 characters")
        folder_uid = body.get("folderUid") or ""
        if folder_uid and folder_uid not in self.folders:
            raise _msg(400, "folder not found", status="not-found")
        overwrite = bool(body.get("overwrite"))
        existing = self.dashboards.get(uid)
        if existing is not None:
            if existing["provisioned"]:
                raise _msg(400, "Cannot save provisioned dashboard", status="provisioned-dashboard")
            if not overwrite and dash.get("version") != existing["dashboard"]["version"]:
                raise _msg(412, "The dashboard has been changed by someone else", status="version-mismatch")
        for other_uid, other in list(self.dashboards.items()):
            if other_uid != uid and other["folderUid"] == folder_uid and other["dashboard"]["title"] == title:
                if not overwrite:
                    raise _msg(412, "A dashboard with the same name in the folder already exists", status="name-exists")
                del self.dashboards[other_uid]  # overwrite replaces the same-titled dashboard
        now = _now()
        dash_id = existing["dashboard"]["id"] if existing else self._new_id()
        version = existing["dashboard"]["version"] + 1 if existing else 1
        dash.update(id=dash_id, uid=uid, version=version)
        self.dashboards[uid] = {
            "dashboard": dash, "folderUid": folder_uid, "provisioned": False,
            "created": existing["created"] if existing else now, "updated": now,
        }
        slug = _slug(title)
        return 200, {"id": dash_id, "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success",
                     "version": version, "slug": slug}

    def provision_dashboard(self, dashboard: JSON, folder_uid: str = "") -> None:
        """Test helper: a dashboard as Grafana's file provisioning would have loaded it (read-only)."""
        dash = dict(dashboard, id=self._new_id(), version=1)
        now = _now()
        self.dashboards[dash["uid"]] = {"dashboard": dash, "folderUid": folder_uid, "provisioned": True,
                                        "externalId": f"{dash['uid']}.json", "created": now, "updated": now}

    # -- datasources ---------------------------------------------------------------------------

    @staticmethod
    def _public_datasource(ds: JSON) -> JSON:
        out = {k: v for k, v in ds.items() if k != "secureJsonData"}
        out["secureJsonFields"] = {k: True for k in ds.get("secureJsonData", {})}
        return json.loads(json.dumps(out))

    def _get_datasource(self, uid: str, **_: Any) -> tuple[int, Any]:
        if uid not in self.datasources:
            raise _msg(404, "Data source not found")
        return 200, self._public_datasource(self.datasources[uid])

    @staticmethod
    def _check_datasource_body(body: JSON) -> None:
        for key in ("name", "type"):
            if not body.get(key):
                raise _msg(400, f"bad request data: {key} is required")
        if body.get("access", "proxy") not in ("proxy", "direct"):
            raise _msg(400, "bad request data: access must be proxy or direct")

    def _create_datasource(self, body: JSON, **_: Any) -> tuple[int, Any]:
        self._check_datasource_body(body)
        if any(ds["name"] == body["name"] for ds in self.datasources.values()):
            raise _msg(409, "data source with the same name already exists")
        uid = body.get("uid") or f"ds{self._next_id:06d}"
        if uid in self.datasources:
            raise _msg(409, "data source with the same uid already exists")
        ds = self._datasource_record(body, uid=uid, ds_id=self._new_id(), version=1, secure={})
        self.datasources[uid] = ds
        return 200, {"datasource": self._public_datasource(ds), "id": ds["id"], "message": "Datasource added",
                     "name": ds["name"]}

    def _update_datasource(self, uid: str, body: JSON, **_: Any) -> tuple[int, Any]:
        current = self.datasources.get(uid)
        if current is None:
            raise _msg(404, "Data source not found")
        if current.get("readOnly"):
            raise _msg(403, "Cannot update read-only data source")
        self._check_datasource_body(body)
        if body.get("version") and body["version"] != current["version"]:
            raise _msg(409, "Datasource has already been updated by someone else. Please reload and try again")
        if any(ds["name"] == body["name"] and u != uid for u, ds in self.datasources.items()):
            raise _msg(409, "data source with the same name already exists")
        ds = self._datasource_record(body, uid=uid, ds_id=current["id"], version=current["version"] + 1,
                                     secure=current.get("secureJsonData", {}))
        self.datasources[uid] = ds
        return 200, {"datasource": self._public_datasource(ds), "id": ds["id"], "message": "Datasource updated",
                     "name": ds["name"]}

    @staticmethod
    def _datasource_record(body: JSON, *, uid: str, ds_id: int, version: int, secure: dict[str, str]) -> JSON:
        return {
            "id": ds_id, "uid": uid, "orgId": 1, "name": body["name"], "type": body["type"],
            "typeLogoUrl": f"public/plugins/{body['type']}/img/logo.svg", "access": body.get("access", "proxy"),
            "url": body.get("url", ""), "user": body.get("user", ""), "database": body.get("database", ""),
            "basicAuth": bool(body.get("basicAuth")), "basicAuthUser": body.get("basicAuthUser", ""),
            "withCredentials": bool(body.get("withCredentials")), "isDefault": bool(body.get("isDefault")),
            "jsonData": body.get("jsonData") or {}, "version": version, "readOnly": False,
            # write-only: merged, never returned
            "secureJsonData": {**secure, **(body.get("secureJsonData") or {})},
        }

    # -- alert rules ---------------------------------------------------------------------------

    def _get_rule(self, uid: str, **_: Any) -> tuple[int, Any]:
        if uid not in self.alert_rules:
            raise ApiError(404, None)  # Grafana answers an empty 404 here
        return 200, json.loads(json.dumps(self.alert_rules[uid]))

    @staticmethod
    def _provenance(headers: dict[str, str]) -> str:
        return "" if headers.get("x-disable-provenance", "").lower() == "true" else "api"

    def _validate_rule(self, body: JSON) -> JSON:
        for key in ("title", "folderUID", "ruleGroup", "condition"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise _msg(400, f"invalid alert rule: {key} is required")
        if body["folderUID"] not in self.folders:
            raise _msg(400, f"invalid alert rule: folder {body['folderUID']} does not exist")
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise _msg(400, "invalid alert rule: data must contain at least one query")
        rule = json.loads(json.dumps(body))
        for query in rule["data"]:
            if not query.get("refId") or not query.get("datasourceUid") or not isinstance(query.get("model"), dict):
                raise _msg(400, "invalid alert query: refId, datasourceUid and model are required")
            query.setdefault("relativeTimeRange", {"from": 0, "to": 0})
            query.setdefault("queryType", "")
            query["model"].setdefault("intervalMs", 1000)
            query["model"].setdefault("maxDataPoints", 43200)
        if rule["condition"] not in {q["refId"] for q in rule["data"]}:
            raise _msg(400, f"invalid alert rule: condition {rule['condition']} does not exist in data")
        if rule.get("noDataState") not in _NO_DATA_STATES:
            raise _msg(400, f"invalid alert rule: unknown no data state {rule.get('noDataState')!r}")
        if rule.get("execErrState") not in _EXEC_ERR_STATES:
            raise _msg(400, f"invalid alert rule: unknown error state {rule.get('execErrState')!r}")
        if not isinstance(rule.get("for"), str):
            raise _msg(400, "invalid alert rule: for is required")
        rule["for"] = _normalise_duration(rule["for"])
        rule.setdefault("annotations", {})
        rule.setdefault("labels", {})
        rule.setdefault("isPaused", False)
        return rule

    def _create_rule(self, body: JSON, headers: dict[str, str], **_: Any) -> tuple[int, Any]:
        rule = self._validate_rule(body)
        uid = rule.get("uid") or f"r{self._next_id:08d}"
        if uid in self.alert_rules:
            raise _msg(409, f"failed to create alert rule: rule with uid {uid} already exists")
        rule.update(uid=uid, id=self._new_id(), orgID=1, updated=_now(), provenance=self._provenance(headers))
        self.alert_rules[uid] = rule
        self.rule_group_intervals.setdefault((rule["folderUID"], rule["ruleGroup"]), 60)
        return 201, rule

    def _update_rule(self, uid: str, body: JSON, headers: dict[str, str], **_: Any) -> tuple[int, Any]:
        current = self.alert_rules.get(uid)
        if current is None:
            raise ApiError(404, None)
        rule = self._validate_rule(body)
        provenance = self._provenance(headers)
        if current["provenance"] not in ("", provenance):
            raise _msg(400, f"cannot change provenance from '{current['provenance']}' to '{provenance}'")
        rule.update(uid=uid, id=current["id"], orgID=1, updated=_now(), provenance=provenance)
        self.alert_rules[uid] = rule
        self.rule_group_intervals.setdefault((rule["folderUID"], rule["ruleGroup"]), 60)
        return 200, rule

    def _group_rules(self, folder: str, group: str) -> list[JSON]:
        return [r for r in self.alert_rules.values() if r["folderUID"] == folder and r["ruleGroup"] == group]

    def _get_group(self, folder: str, group: str, **_: Any) -> tuple[int, Any]:
        rules = self._group_rules(folder, group)
        if not rules:
            raise _msg(404, "rule group not found")
        return 200, {"title": group, "folderUid": folder, "interval": self.rule_group_intervals[(folder, group)],
                     "rules": json.loads(json.dumps(rules))}

    def _put_group(self, folder: str, group: str, body: JSON, headers: dict[str, str], **_: Any) -> tuple[int, Any]:
        interval = body.get("interval")
        if not isinstance(interval, int) or interval <= 0 or interval % 10:
            raise _msg(400, "invalid rule group: interval must be a positive multiple of 10 seconds")
        if folder not in self.folders:
            raise _msg(400, f"folder {folder} does not exist")
        incoming = body.get("rules")
        if not isinstance(incoming, list):
            raise _msg(400, "invalid rule group: rules are required")
        provenance = self._provenance(headers)
        for raw in incoming:
            rule = self._validate_rule({**raw, "folderUID": folder, "ruleGroup": group})
            current = self.alert_rules.get(rule.get("uid", ""))
            if current is not None and current["provenance"] not in ("", provenance):
                raise _msg(400, f"cannot change provenance from '{current['provenance']}' to '{provenance}'")
            uid = rule.get("uid") or f"r{self._next_id:08d}"
            rule.update(uid=uid, id=current["id"] if current else self._new_id(), orgID=1, updated=_now(),
                        provenance=provenance)
            self.alert_rules[uid] = rule
        self.rule_group_intervals[(folder, group)] = interval
        return self._get_group(folder, group)

    # -- contact points ------------------------------------------------------------------------

    @staticmethod
    def _redacted(point: JSON) -> JSON:
        out = json.loads(json.dumps(point))
        for key in _SECURE_SETTINGS.get(out["type"], ()):
            if out["settings"].get(key):
                out["settings"][key] = "[REDACTED]"
        return out

    def _list_contact_points(self, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        points = [p for p in self.contact_points.values() if "name" not in query or p["name"] == query["name"]]
        return 200, [self._redacted(p) for p in points]

    @staticmethod
    def _validate_contact_point(body: JSON) -> None:
        if not body.get("name"):
            raise _msg(400, "invalid contact point: name is required")
        if body.get("type") not in _CONTACT_TYPES:
            raise _msg(400, f"invalid contact point: unknown type {body.get('type')!r}")
        if not isinstance(body.get("settings"), dict):
            raise _msg(400, "invalid contact point: settings are required")
        if body["type"] == "webhook" and not body["settings"].get("url"):
            raise _msg(400, "invalid contact point: could not find url property in settings")

    def _create_contact_point(self, body: JSON, headers: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._validate_contact_point(body)
        uid = body.get("uid") or f"c{self._next_id:08d}"
        if uid in self.contact_points:
            raise _msg(409, f"contact point with uid {uid} already exists")
        point = {"uid": uid, "name": body["name"], "type": body["type"], "settings": dict(body["settings"]),
                 "disableResolveMessage": bool(body.get("disableResolveMessage")),
                 "provenance": self._provenance(headers)}
        self._new_id()
        self.contact_points[uid] = point
        return 202, self._redacted(point)

    def _update_contact_point(self, uid: str, body: JSON, headers: dict[str, str], **_: Any) -> tuple[int, Any]:
        current = self.contact_points.get(uid)
        if current is None:
            raise _msg(404, "contact point not found")
        self._validate_contact_point(body)
        provenance = self._provenance(headers)
        if current["provenance"] not in ("", provenance):
            raise _msg(400, f"cannot change provenance from '{current['provenance']}' to '{provenance}'")
        settings = {k: (current["settings"].get(k) if v == "[REDACTED]" else v) for k, v in body["settings"].items()}
        current.update(name=body["name"], type=body["type"], settings=settings,
                       disableResolveMessage=bool(body.get("disableResolveMessage")), provenance=provenance)
        return 202, {"message": "contactpoint updated"}
