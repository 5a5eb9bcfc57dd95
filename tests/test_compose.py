"""docker-compose.yml is valid Compose, runs real llmwatch commands, and mounts paths that exist.

Docker cannot run here, so the file is checked statically: against the Compose Specification
JSON schema (vendored in tests/data/compose-spec.json, origin in its ``$comment``), and against
the code it refers to.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml

from streams.cli import app as cli_app
from streams.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    # The file names draft 2019-09 by a URI jsonschema doesn't know; its keywords are draft 7's.
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _commands(compose: dict[str, Any]) -> list[tuple[str, list[str]]]:
    out = []
    for name, service in compose["services"].items():
        command = service.get("command")
        if command is not None:
            out.append((name, shlex.split(command) if isinstance(command, str) else list(command)))
    return out


def _check_cli(argv: list[str]) -> None:
    """Parse ``llmwatch ...`` argv with the real CLI, without running it (raises on a bad command/option)."""
    assert argv[0] == "llmwatch", f"{argv}: expected the llmwatch CLI"
    group = typer.main.get_command(cli_app)  # typer's own (vendored) click Group
    ctx = group.context_class(group, info_name="llmwatch")
    command = group.get_command(ctx, argv[1]) if len(argv) > 1 else None
    assert command is not None, f"`llmwatch {argv[1:]}`: no such command (have {sorted(group.commands)})"
    command.make_context(argv[1], argv[2:], parent=ctx)


def test_valid_against_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(_validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    """Guard against a schema that accepts anything."""
    schema = json.loads(SCHEMA.read_text())
    broken = {**compose, "services": {**compose["services"], "kafka": {**compose["services"]["kafka"], "healthchek": {}}}}
    assert list(_validator(schema).iter_errors(broken))


def test_expected_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "clickhouse", "grafana", "worker", "generator"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert "grafana-clickhouse-datasource" in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    for name in ("kafka", "clickhouse", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    env = services["worker"]["environment"]
    assert env["LLMWATCH_KAFKA"] == "kafka:9092"
    assert env["LLMWATCH_CLICKHOUSE_DSN"].startswith("http://default:")


def test_commands_are_llmwatch_cli_commands(compose: dict[str, Any]) -> None:
    commands = _commands(compose)
    assert {name for name, _ in commands} >= {"worker", "generator"}
    for name, argv in commands:
        _check_cli(argv)


def test_dockerfile_cmd_is_a_cli_command() -> None:
    cmds = re.findall(r"^CMD\s+(\[.*\])\s*$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    assert cmds, "Dockerfile has no exec-form CMD"
    _check_cli(json.loads(cmds[-1]))


def test_llmwatch_environment_variables_exist(compose: dict[str, Any]) -> None:
    known = set(Settings._ENV.values())
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        used = {k for k in env if k.startswith("LLMWATCH_")}
        if service.get("command"):  # llmwatch processes read these through Settings
            assert used <= known, f"{name}: unknown settings {sorted(used - known)}"


def test_mounted_and_built_paths_exist(compose: dict[str, Any]) -> None:
    missing = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source.startswith((".", "/")) and not (ROOT / source).exists():
                missing.append(f"{name}: {source}")
        build = service.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not (context / dockerfile).is_file():
                missing.append(f"{name}: {context / dockerfile}")
    assert not missing, f"paths referenced by docker-compose.yml are missing: {missing}"


def test_dockerfile_copies_existing_paths() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
