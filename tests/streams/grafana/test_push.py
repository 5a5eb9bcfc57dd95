"""``llmwatch dashboards push`` against the local fake Grafana (tests/streams/grafana/fake_grafana.py)."""
from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streams.grafana import push as gp
from streams.cli import app
from tests.streams.grafana.fake_grafana import FakeGrafana

REPO_DASHBOARDS = Path(gp.__file__).resolve().parents[2] / "dashboards"
ENV = gp.datasource_env("clickhouse", 8123, "default", "s3cret")
ALERT_ENV = {"LLMWATCH_ALERT_WEBHOOK_URL": "http://alerts.local/hook"}

ALERTING = {
    "apiVersion": 1,
    "groups": [{
        "orgId": 1, "name": "llmwatch-safety", "folder": "llmwatch", "interval": "30s",
        "rules": [{
            "uid": "llmwatch-injection-rate", "title": "Injection rate high", "condition": "C", "for": "300s",
            "data": [
                {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0}, "datasourceUid": "llmwatch-clickhouse",
                 "model": {"rawSql": "SELECT now() AS time, 0.03 AS value", "format": 1, "refId": "A"}},
                {"refId": "C", "datasourceUid": "__expr__",
                 "model": {"type": "threshold", "expression": "A", "refId": "C",
                           "conditions": [{"evaluator": {"type": "gt", "params": [0.02]}}]}},
            ],
            "annotations": {"summary": "More than 2% of calls flagged as prompt injection"},
            "labels": {"team": "llm-platform"},
        }],
    }],
    "contactPoints": [{"orgId": 1, "name": "llmwatch-webhook", "receivers": [
        {"uid": "llmwatch-webhook", "type": "webhook", "settings": {"url": "http://alerts.local/hook", "httpMethod": "POST"}},
    ]}],
}


def _dashboard(uid: str, title: str) -> dict:
    return {"uid": uid, "title": title, "schemaVersion": 39, "tags": ["llmwatch"], "time": {"from": "now-24h", "to": "now"},
            "panels": [{"id": 1, "type": "stat", "title": "Calls", "datasource": {"uid": "llmwatch-clickhouse"},
                        "targets": [{"refId": "A", "rawSql": "SELECT count() FROM llm_calls"}]}]}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A definitions folder like the repo's dashboards/: two dashboards, datasource, alerting."""
    root = tmp_path / "dashboards"
    (root / "provisioning" / "alerting").mkdir(parents=True)
    shutil.copytree(REPO_DASHBOARDS / "provisioning" / "datasources", root / "provisioning" / "datasources")
    (root / "overview.json").write_text(json.dumps(_dashboard("llmwatch-overview", "LLM overview")))
    (root / "safety.json").write_text(json.dumps(_dashboard("llmwatch-safety", "LLM safety")))
    (root / "provisioning" / "alerting" / "rules.yaml").write_text(yaml.safe_dump(ALERTING))
    return root


@pytest.fixture
def grafana():
    with FakeGrafana(token="good-token") as fake:
        yield fake


def _push(fake: FakeGrafana, source: Path, token: str = "good-token") -> list[gp.Change]:
    api = gp.open_api(fake.url, token=token)
    with gp.grafana_errors(fake.url):
        return gp.push(api, gp.load_bundle(ENV, directory=source, alert_env=ALERT_ENV))


def test_first_push_creates_everything(grafana: FakeGrafana, source: Path) -> None:
    changes = _push(grafana, source)
    assert {(c.kind, c.action) for c in changes if c.kind != "rule group"} == {
        ("folder", "created"), ("datasource", "created"), ("dashboard", "created"),
        ("contact point", "created"), ("alert rule", "created")}
    assert [c.action for c in changes if c.kind == "rule group"] == ["updated"]  # 60 s default -> 30 s
    assert set(grafana.dashboards) == {"llmwatch-overview", "llmwatch-safety"}
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {"llmwatch"}
    ds = grafana.datasources["llmwatch-clickhouse"]
    assert ds["jsonData"]["host"] == "clickhouse" and ds["jsonData"]["port"] == 8123
    assert ds["secureJsonData"] == {"password": "s3cret"}
    rule = grafana.alert_rules["llmwatch-injection-rate"]
    assert rule["folderUID"] == "llmwatch" and rule["provenance"] == "api" and rule["for"] == "5m"
    assert grafana.rule_group_intervals[("llmwatch", "llmwatch-safety")] == 30


def test_second_push_writes_nothing(grafana: FakeGrafana, source: Path) -> None:
    _push(grafana, source)
    grafana.writes.clear()
    changes = _push(grafana, source)
    assert grafana.writes == []
    assert {c.action for c in changes} == {"unchanged"}


def test_changed_dashboard_is_one_update_with_next_version(grafana: FakeGrafana, source: Path) -> None:
    _push(grafana, source)
    before = grafana.dashboards["llmwatch-safety"]["dashboard"]["version"]
    dash = json.loads((source / "safety.json").read_text())
    dash["panels"][0]["title"] = "Calls (all)"
    (source / "safety.json").write_text(json.dumps(dash))
    grafana.writes.clear()

    changes = _push(grafana, source)

    assert grafana.writes == [("POST", "/api/dashboards/db")]
    assert [(c.name, c.action) for c in changes if c.action != "unchanged"] == [("LLM safety", "updated")]
    stored = grafana.dashboards["llmwatch-safety"]["dashboard"]
    assert stored["version"] == before + 1 and stored["panels"][0]["title"] == "Calls (all)"


def test_fake_rejects_stale_dashboard_version(grafana: FakeGrafana, source: Path) -> None:
    _push(grafana, source)
    api = gp.open_api(grafana.url, token="good-token")
    stale = {"dashboard": {**_dashboard("llmwatch-safety", "LLM safety"), "version": 0}, "folderUid": "llmwatch",
             "overwrite": False}
    with pytest.raises(gp.GrafanaException) as err:
        api.dashboard.update_dashboard(stale)
    assert err.value.status_code == 412 and err.value.response["status"] == "version-mismatch"


def test_changed_password_and_provisioned_dashboard(grafana: FakeGrafana, source: Path) -> None:
    grafana.provision_dashboard(_dashboard("llmwatch-overview", "Old overview"))
    changes = {c.name: c for c in _push(grafana, source)}
    assert changes["LLM overview"].action == "skipped" and "provisioned" in changes["LLM overview"].detail


def test_wrong_token_is_a_clear_error(grafana: FakeGrafana, source: Path) -> None:
    with pytest.raises(gp.PushError, match="check GRAFANA_TOKEN"):
        _push(grafana, source, token="wrong")
    assert grafana.writes == []


def test_grafana_down_is_a_clear_error(source: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(gp.PushError, match=f"is Grafana running at {url}"):
        api = gp.open_api(url, token="t", timeout=2)
        with gp.grafana_errors(url):
            gp.push(api, gp.load_bundle(ENV, directory=source, alert_env=ALERT_ENV))


def test_cli_push_twice_prints_table(grafana: FakeGrafana, source: Path) -> None:
    runner = CliRunner()
    args = ["dashboards", "push", "--url", grafana.url, "--source", str(source), "--clickhouse-password", "x",
            "--webhook-url", "http://alerts.local/hook"]
    first = runner.invoke(app, args, env={"GRAFANA_TOKEN": "good-token"})
    assert first.exit_code == 0, first.output
    assert "created" in first.output and "LLM overview" in first.output
    second = runner.invoke(app, args, env={"GRAFANA_TOKEN": "good-token"})
    assert second.exit_code == 0 and "unchanged" in second.output and "created" not in second.output
    bad = runner.invoke(app, args, env={"GRAFANA_TOKEN": "nope"})
    assert bad.exit_code == 1 and "GRAFANA_TOKEN" in bad.output


def test_missing_webhook_url_names_the_fix(source: Path) -> None:
    spec = yaml.safe_load((source / "provisioning" / "alerting" / "rules.yaml").read_text())
    spec["contactPoints"][0]["receivers"][0]["settings"]["url"] = "${LLMWATCH_ALERT_WEBHOOK_URL}"
    (source / "provisioning" / "alerting" / "rules.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(gp.PushError, match="LLMWATCH_ALERT_WEBHOOK_URL"):
        gp.load_bundle(ENV, directory=source, alert_env={})
    bundle = gp.load_bundle(ENV, directory=source, alert_env=ALERT_ENV)
    assert bundle.contact_points[0]["settings"]["url"] == "http://alerts.local/hook"


def test_basic_auth(grafana: FakeGrafana, source: Path) -> None:
    api = gp.open_api(grafana.url, user="admin", password="admin")
    with gp.grafana_errors(grafana.url):
        assert gp.push_folder(api, "llmwatch", "llmwatch").action == "created"


def test_repo_definitions_push_cleanly_and_idempotently(grafana: FakeGrafana) -> None:
    """The real dashboards/ and alerting definitions pass the fake's validation, twice."""
    assert len(list(REPO_DASHBOARDS.glob("*.json"))) == 6, "the six dashboards must be in dashboards/"
    first = _push(grafana, REPO_DASHBOARDS)
    assert "skipped" not in {c.action for c in first}
    assert {c.kind for c in first if c.action == "created"} == {
        "folder", "datasource", "dashboard", "alert rule", "contact point"}
    grafana.writes.clear()
    assert {c.action for c in _push(grafana, REPO_DASHBOARDS)} == {"unchanged"}
    assert grafana.writes == []
