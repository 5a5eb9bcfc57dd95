"""ClickHouse through clickhouse-connect: one connect function and the migration runner.

The DSN decides the engine: ``chdb:///path`` is the embedded engine (the default; one process
may hold the folder at a time), ``http://user:pass@host:8123/db`` a server.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from schemas import migrations
from schemas.cluster import clusterize

MIGRATIONS_TABLE = "llmwatch_migrations"
MIGRATIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
    "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
    "ENGINE = ReplacingMergeTree ORDER BY version"
)


class ClickHouseUnavailable(RuntimeError):
    """Cannot open the configured ClickHouse."""


def connect(dsn: str, **options: Any) -> Client:
    """A client for the DSN (``options`` go to ``clickhouse_connect.get_client``); an embedded
    data folder is created if missing."""
    if dsn.startswith("chdb://"):
        Path(dsn[len("chdb://"):]).mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=dsn, **options)
    except Exception as exc:
        hint = (
            "another process (a running worker?) holds the embedded data folder; stop it or point "
            "LLMWATCH_CLICKHOUSE_DSN elsewhere"
            if dsn.startswith("chdb://")
            else "check the server is up and LLMWATCH_CLICKHOUSE_DSN is right"
        )
        raise ClickHouseUnavailable(f"cannot open ClickHouse at {dsn}: {exc}; fix: {hint}") from exc


def migrate(client: Client, cluster: str = "", **params: Any) -> list[str]:
    """Apply the migrations not applied yet, in order; returns their names.

    ``params`` fill ``{placeholders}`` in the DDL (for example ``raw_ttl_days``). With ``cluster``
    (``LLMWATCH_CLICKHOUSE_CLUSTER``) every statement, the ledger table's too, is run in its
    cluster form (:func:`schemas.cluster.clusterize`); ``""`` runs the files' own DDL.
    """
    params.setdefault("raw_ttl_days", 90)
    params.setdefault("rollup_ttl_days", 400)
    for statement in clusterize(MIGRATIONS_DDL, cluster):
        client.command(statement)
    if cluster:
        _check_clustered(client)
    done = {row[0] for row in client.query(f"SELECT version FROM {MIGRATIONS_TABLE}").result_rows}
    applied = []
    for migration in migrations():
        if migration.version in done:
            continue
        for statement in migration.statements(cluster=cluster, **params):
            client.command(statement)
        client.insert(MIGRATIONS_TABLE, [[migration.version, migration.name]], column_names=["version", "name"])
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied


def _check_clustered(client: Client) -> None:
    """Refuse a cluster migration of a database migrated without one: its ledger would mark every
    migration applied, and the single-node tables would silently stay as they are."""
    rows = client.query(
        "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": MIGRATIONS_TABLE},
    ).result_rows
    if rows and rows[0][0] != "Distributed":
        raise RuntimeError(
            f"{MIGRATIONS_TABLE} is a {rows[0][0]} table: this database was migrated without "
            "LLMWATCH_CLICKHOUSE_CLUSTER; use a new database for the cluster and copy the data over"
        )
