"""Dashboards and provisioning files against Grafana's own models (grafana-foundation-sdk).

The SDK's types are generated from Grafana's schemas; a dashboard that decodes into them and
encodes back to the same JSON uses only fields (and enum values) Grafana's model knows. The SDK is a
test dependency (``.[test]``): without it this module fails to import, it is never skipped.
"""
from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import grafana_foundation_sdk  # noqa: F401
except ImportError as exc:  # the schema checks must run: fail loudly, never skip
    raise ImportError(
        "grafana-foundation-sdk is required by the dashboard schema tests; install the test extras: "
        ".venv/bin/pip install -e '.[test]' (or: .venv/bin/pip install grafana-foundation-sdk)") from exc
from grafana_foundation_sdk.cog.plugins import register_default_plugins  # noqa: E402
from grafana_foundation_sdk.models import alerting  # noqa: E402
from grafana_foundation_sdk.models.dashboard import Dashboard  # noqa: E402

from dashboards import build  # noqa: E402
from dashboards.queries import DASHBOARD_DIR, expand, iter_panels  # noqa: E402

PROVISIONING = DASHBOARD_DIR / "provisioning"
register_default_plugins()


def _encode(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.to_json() if hasattr(o, "to_json") else o.value))


def _lost(original: Any, decoded: Any, path: str = "") -> list[str]:
    """Paths present in ``original`` but missing or changed after the round trip."""
    if isinstance(original, dict):
        if not isinstance(decoded, dict):
            return [path]
        return [p for k, v in original.items()
                for p in (_lost(v, decoded[k], f"{path}/{k}") if k in decoded else [f"{path}/{k}"])]
    if isinstance(original, list):
        if not isinstance(decoded, list) or len(original) != len(decoded):
            return [path]
        return [p for i, (a, b) in enumerate(zip(original, decoded)) for p in _lost(a, b, f"{path}[{i}]")]
    return [] if original == decoded else [f"{path}: {original!r} -> {decoded!r}"]


@pytest.mark.parametrize("path", sorted(DASHBOARD_DIR.glob("*.json")), ids=lambda p: p.name)
def test_dashboard_round_trips_through_grafana_model(path: Path) -> None:
    data = json.loads(path.read_text())
    assert _lost(data, _encode(Dashboard.from_json(data).to_json())) == []


def test_dashboard_json_is_up_to_date() -> None:
    assert build.main(["--check"]) == 0


def test_dashboards_use_the_provisioned_datasource() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "clickhouse.yaml").read_text())["datasources"][0]
    for path in DASHBOARD_DIR.glob("*.json"):
        data = json.loads(path.read_text())
        for panel in data["panels"]:
            assert panel["datasource"] == {"type": ds["type"], "uid": ds["uid"]}
            assert all(t["datasource"]["uid"] == ds["uid"] for t in panel["targets"])
        assert len({p["id"] for p in data["panels"]}) == len(data["panels"])


def test_datasource_and_dashboard_provider_files() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "clickhouse.yaml").read_text())
    assert ds["apiVersion"] == 1
    assert {"name", "type", "uid", "jsonData"} <= set(ds["datasources"][0])
    assert ds["datasources"][0]["type"] == "grafana-clickhouse-datasource"
    prov = yaml.safe_load((PROVISIONING / "dashboards" / "llmwatch.yaml").read_text())
    provider = prov["providers"][0]
    assert prov["apiVersion"] == 1 and provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def _alerting(name: str) -> dict[str, Any]:
    data = yaml.safe_load((PROVISIONING / "alerting" / name).read_text())
    assert data["apiVersion"] == 1
    return data


def _literal(cls: type, field: str) -> tuple[str, ...]:
    return typing.get_args(typing.get_type_hints(cls)[field])


def test_alert_rules_decode_into_grafana_rule_model() -> None:
    groups = _alerting("rules.yaml")["groups"]
    uids = set()
    for group in groups:
        assert {"orgId", "name", "folder", "interval", "rules"} <= set(group)
        for rule in group["rules"]:
            decoded = _encode(alerting.Rule.from_json(rule).to_json())
            assert _lost(rule, decoded) == [], rule["uid"]
            assert rule["noDataState"] in _literal(alerting.Rule, "no_data_state")
            assert rule["execErrState"] in _literal(alerting.Rule, "exec_err_state")
            refs = {q["refId"] for q in rule["data"]}
            assert rule["condition"] in refs
            for query in rule["data"]:
                assert query["datasourceUid"] in ("llmwatch-clickhouse", "__expr__")
                if query["model"].get("type") in ("reduce", "threshold", "math"):
                    assert query["model"]["expression"] in refs
            uids.add(rule["uid"])
    assert len(uids) == sum(len(g["rules"]) for g in groups)


def test_alert_queries_run_on_seeded_data(seeded) -> None:
    client, summary = seeded
    for rule in _alerting("rules.yaml")["groups"][0]["rules"]:
        sql = rule["data"][0]["model"]["rawSql"]
        rows = client.query(expand(sql, summary.start, summary.end, {}, 60)).result_rows
        assert rows and isinstance(rows[0][-1], float), rule["uid"]


def test_contact_points_and_policies() -> None:
    points = _alerting("contact_points.yaml")["contactPoints"]
    names = set()
    for point in points:
        names.add(point["name"])
        for receiver in point["receivers"]:
            cp = alerting.ContactPoint.from_json({**receiver, "name": point["name"]})
            assert cp.type_val in _literal(alerting.ContactPoint, "type_val")
            assert receiver["type"] == "webhook" and receiver["settings"]["url"]
    policy = _alerting("policies.yaml")["policies"][0]
    decoded = alerting.NotificationPolicy.from_json(policy)
    assert decoded.receiver in names
    assert all(route["receiver"] in names for route in policy.get("routes", []))


def test_every_panel_has_a_query() -> None:
    for path in DASHBOARD_DIR.glob("*.json"):
        data = json.loads(path.read_text())
        assert len(list(iter_panels(data))) == len(data["panels"])
