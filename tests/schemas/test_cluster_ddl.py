"""Cluster DDL (``LLMWATCH_CLICKHOUSE_CLUSTER``): the transform, and as much of its output as the
embedded engine can run.

What chdb (26.x, embedded clickhouse-local) runs here, in a child process given a config file with
a one-shard cluster ``llmwatch_test`` on ``localhost:9000`` (``tcp_port`` 9000 makes that shard
*local*: no network), ``{shard}``/``{replica}`` macros and the in-process ``testkeeper``:

* every ``ON CLUSTER`` statement, verbatim: it parses and names a cluster the engine knows, then
  stops with QUERY_IS_PROHIBITED ("Replicated DDL queries are disabled": clickhouse-local has no
  DDL worker), where an unknown cluster gives CLUSTER_DOESNT_EXIST;
* every ``Replicated*`` local table, created for real against testkeeper (engine arguments are
  checked: the version column, the macros in the ZooKeeper path), with the same columns, keys,
  TTL and indices as the single-node table, and the views hanging on the local tables;
* the whole schema with ``ON CLUSTER`` stripped and ``Replicated*`` swapped back to plain engines,
  applied by ``migrate(cluster=...)``: seeded through the ``Distributed`` tables, every dashboard
  panel gives the single-node answer, ``FINAL`` collapses a replay, the replay and duplicate
  guards see stored rows.

What it cannot check: replication itself (testkeeper replicas stay read-only in clickhouse-local,
so nothing is inserted into a ``Replicated*`` table), the DDL queue (``ON CLUSTER`` never runs),
and more than one shard (a second *local* shard would read the same tables twice; a remote one
needs a server). So the sharding keys are checked as a property instead: each reads sorting-key
columns only, hence rows that collapse share a shard. Multi-shard query rules
(``distributed_product_mode`` for ``IN``/``JOIN`` over two Distributed tables) are not exercised.
"""
from __future__ import annotations

import doctest
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import schemas.cluster
from schemas import migrations
from schemas.cluster import SHARDING_KEYS, clusterize, cluster_sql, sorting_key
from streams.storage.clickhouse import MIGRATIONS_DDL, migrate

CLUSTER = "llmwatch_test"
PARAMS = {"raw_ttl_days": 90, "rollup_ttl_days": 400}
ROOT = Path(__file__).resolve().parents[2]
_DISTRIBUTED = re.compile(r"ENGINE = Distributed\(")
_UNREPLICATE = ((re.compile(r"Replicated(\w*MergeTree)\('[^']*', '[^']*'\)"), r"\1"),
                (re.compile(r"Replicated(\w*MergeTree)\('[^']*', '[^']*', "), r"\1("))


# -- helpers --------------------------------------------------------------------------------------
def single_node(statement: str) -> str:
    """What chdb can run of a cluster statement: no ``ON CLUSTER``, plain engines (names kept)."""
    statement = re.sub(r" ON CLUSTER \S+", "", statement)
    for pattern, repl in _UNREPLICATE:
        statement = pattern.sub(repl, statement)
    return statement


def declusterize(statements: list[str]) -> list[str]:
    """The inverse transform: drop Distributed tables, strip the rest back to single-node DDL."""
    out = []
    for statement in statements:
        if not _DISTRIBUTED.search(statement):
            plain = re.sub(r"\b(\w+)_local AS \1\b", r"\1", single_node(statement))
            out.append(re.sub(r"\b(\w+)_local\b", r"\1", plain))
    return out


def cluster_statements(cluster: str = CLUSTER) -> list[tuple[str, list[str]]]:
    """``(single-node statement, its cluster statements)`` for every migration statement."""
    pairs = []
    for migration in migrations():
        for statement in migration.statements(**PARAMS):
            pairs.append((statement, clusterize(statement, cluster)))
    return pairs


class Recorder:
    """A client that records commands and answers queries with no rows."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.inserts: list[tuple[str, Any]] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str, parameters: Any = None) -> Any:
        return type("Result", (), {"result_rows": []})()

    def insert(self, table: str, rows: Any, column_names: Any = None) -> None:
        self.inserts.append((table, rows))


# -- no cluster: byte-identical -----------------------------------------------------------------
def test_without_a_cluster_the_statements_are_the_files_own() -> None:
    for migration in migrations():
        text = migration.sql
        for key, value in PARAMS.items():
            text = text.replace("{" + key + "}", str(value))
        lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
        expected = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
        assert migration.statements(**PARAMS) == expected
        assert migration.statements(cluster="", **PARAMS) == expected
        assert all(clusterize(s, "") == [s] for s in expected)


def test_migrate_without_a_cluster_sends_the_same_commands() -> None:
    client = Recorder()
    migrate(client, raw_ttl_days=90, rollup_ttl_days=400)  # type: ignore[arg-type]
    assert client.commands[0] == (
        "CREATE TABLE IF NOT EXISTS llmwatch_migrations "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version")
    assert client.commands[1:] == [s for m in migrations() for s in m.statements(**PARAMS)]
    assert [t for t, _ in client.inserts] == ["llmwatch_migrations"] * len(migrations())


def test_migrate_with_a_cluster_sends_cluster_ddl_for_the_ledger_too() -> None:
    client = Recorder()
    migrate(client, cluster="prod", raw_ttl_days=90, rollup_ttl_days=400)  # type: ignore[arg-type]
    assert client.commands[:2] == clusterize(MIGRATIONS_DDL, "prod")
    assert client.commands[2:] == [s for m in migrations() for s in m.statements(cluster="prod", **PARAMS)]
    assert all(re.search(r" ON CLUSTER prod\s", c) for c in client.commands)


# -- the transform -------------------------------------------------------------------------------
def test_the_cluster_ddl_strips_back_to_the_single_node_ddl() -> None:
    for original, clustered in cluster_statements():
        assert declusterize(clustered) == [original]


def test_every_statement_runs_on_the_cluster() -> None:
    for _, clustered in cluster_statements():
        for statement in clustered:
            assert re.match(r"CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS \w+ ON CLUSTER llmwatch_test\b",
                            statement), statement[:120]


def test_data_tables_are_replicated_locals_behind_distributed_tables() -> None:
    tables = 0
    for original, clustered in cluster_statements():
        head = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", original)
        if head is None:
            continue
        tables += 1
        table = head[1]
        engine = re.search(r"ENGINE = (\w+)(\(([^)]*)\))?", original)
        assert engine is not None
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{table}_local', '{{replica}}'"
        args = f"{path}, {engine[3]}" if engine[3] else path
        local, distributed = clustered
        assert f"ENGINE = Replicated{engine[1]}({args})" in local
        assert local.startswith(f"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER")
        assert distributed == (
            f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER {CLUSTER} AS {table}_local ENGINE = "
            f"Distributed({CLUSTER}, currentDatabase(), {table}_local, {schemas.cluster.sharding_key(table, sorting_key(original))})")
    assert tables >= 10


def test_alerts_keep_their_version_column_after_the_replication_arguments() -> None:
    alerts = next(c for o, c in cluster_statements() if o.startswith("CREATE TABLE IF NOT EXISTS alerts\n"))
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/alerts_local', "
            "'{replica}', revision)") in alerts[0]


def test_views_read_local_tables_and_write_local_rollups() -> None:
    views = [c[0] for o, c in cluster_statements() if o.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) >= 5
    for view in views:
        assert re.search(r" TO \w+_local AS\n", view), view[:120]
        # tables only: ``ARRAY JOIN f(...)`` unnests a function's result, no table to localise
        sources = re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\b(?!\s*\()(?:\s+AS\s+(\w+))?", view)
        assert sources and all(t == f"{alias}_local" for t, alias in sources), sources


def test_sharding_keys_read_sorting_key_columns_only() -> None:
    """Rows ReplacingMergeTree collapses have equal sorting keys: a key over sorting-key columns
    sends them to one shard, so FINAL (which collapses per shard) stays exact."""
    keys = {}
    for original, clustered in cluster_statements():
        if len(clustered) == 2:
            table = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", original)[1]  # type: ignore[index]
            key = re.search(r", (cityHash64\(.*\))\)$", clustered[1])[1]  # type: ignore[index]
            columns = set(re.findall(r"\w+", key[len("cityHash64("):-1]))
            assert columns <= set(sorting_key(original)), (table, key)
            keys[table] = key
    # raw rows of one event (its call, its verdicts) share a shard: replays and re-sends collapse,
    # the replay guard's positions and an event's verdicts stay next to the call
    for table in ("llm_calls", "detections"):
        assert keys[table] == "cityHash64(event_id)"
    assert keys["alerts"] == keys["alert_deliveries"] == "cityHash64(notification_id)"


@pytest.mark.parametrize("key", ["cityHash64(user_id)", "rand()", "cityHash64(id, user_id)"])
def test_a_sharding_key_outside_the_sorting_key_is_refused(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setitem(SHARDING_KEYS, "t", key)
    with pytest.raises(ValueError, match="outside its sorting key"):
        clusterize("CREATE TABLE t (id String, user_id String) ENGINE = MergeTree ORDER BY id", "c")


@pytest.mark.parametrize(("engine", "replicated"), [
    ("MergeTree", "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/t_local', '{replica}')"),
    ("MergeTree()", "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/t_local', '{replica}')"),
    ("SummingMergeTree((a, b))", "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/t_local', "
                                 "'{replica}', (a, b))"),
    ("CollapsingMergeTree(sign)", "ReplicatedCollapsingMergeTree('/clickhouse/tables/{shard}/{database}/t_local', "
                                  "'{replica}', sign)"),
    ("VersionedCollapsingMergeTree(sign, v)", "ReplicatedVersionedCollapsingMergeTree("
     "'/clickhouse/tables/{shard}/{database}/t_local', '{replica}', sign, v)"),
    ("ReplacingMergeTree(v, is_deleted)", "ReplicatedReplacingMergeTree("
     "'/clickhouse/tables/{shard}/{database}/t_local', '{replica}', v, is_deleted)"),
])
def test_engine_arguments_follow_the_replication_arguments(engine: str, replicated: str) -> None:
    local, _ = clusterize(f"CREATE TABLE t (id String) ENGINE = {engine} ORDER BY id", "c")
    assert local == f"CREATE TABLE t_local ON CLUSTER c (id String) ENGINE = {replicated} ORDER BY id"


def test_a_table_that_is_no_merge_tree_is_only_created_on_every_node() -> None:
    assert clusterize("CREATE TABLE q (x UInt8) ENGINE = Memory", "c") == [
        "CREATE TABLE q ON CLUSTER c (x UInt8) ENGINE = Memory"]


@pytest.mark.parametrize(("alter", "expected"), [
    ("ALTER TABLE llm_calls ADD COLUMN region String", [
        "ALTER TABLE llm_calls_local ON CLUSTER c ADD COLUMN region String",
        "ALTER TABLE llm_calls ON CLUSTER c ADD COLUMN region String"]),
    ("ALTER TABLE llm_calls MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY", [
        "ALTER TABLE llm_calls_local ON CLUSTER c MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY"]),
    ("ALTER TABLE llm_calls_1m DELETE WHERE minute = 0", [
        "ALTER TABLE llm_calls_1m_local ON CLUSTER c DELETE WHERE minute = 0"]),
    ("ALTER TABLE v_mv MODIFY QUERY SELECT x FROM src", [
        "ALTER TABLE v_mv ON CLUSTER c MODIFY QUERY SELECT x FROM src_local AS src"]),
])
def test_alters(alter: str, expected: list[str]) -> None:
    assert clusterize(alter, "c") == expected


@pytest.mark.parametrize("statement", [
    "INSERT INTO llm_calls VALUES (1)",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MATERIALIZED VIEW v ENGINE = MergeTree ORDER BY x AS SELECT x FROM t",  # implicit inner table
    "CREATE TABLE db.t (x UInt8) ENGINE = MergeTree ORDER BY x",
    "DROP TABLE t",
])
def test_statements_without_a_cluster_form_are_refused(statement: str) -> None:
    with pytest.raises(ValueError, match="no cluster form"):
        clusterize(statement, "c")


def test_cluster_names() -> None:
    assert cluster_sql("prod_1") == "prod_1"
    assert cluster_sql("{cluster}") == "'{cluster}'"
    assert clusterize("CREATE TABLE q (x UInt8) ENGINE = Memory", "eu-west") == [
        "CREATE TABLE q ON CLUSTER 'eu-west' (x UInt8) ENGINE = Memory"]
    for bad in ("a b", "x'; DROP TABLE y", "c,d"):
        with pytest.raises(ValueError, match="cluster name"):
            cluster_sql(bad)


def test_doctests() -> None:
    result = doctest.testmod(schemas.cluster)
    assert result.attempted >= 8 and result.failed == 0


# -- the embedded engine -------------------------------------------------------------------------
CHDB_CONFIG = f"""<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers><{CLUSTER}><shard><replica><host>localhost</host><port>9000</port></replica></shard></{CLUSTER}>
  </remote_servers>
  <macros><shard>01</shard><replica>r1</replica></macros>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
</clickhouse>
"""


def test_cluster_ddl_on_the_embedded_engine(tmp_path: Path) -> None:
    """Runs :func:`engine_checks` in a child process: the engine is configured once per process
    (cluster, macros, testkeeper), and testkeeper may abort the process when the engine shuts down."""
    (tmp_path / "config.xml").write_text(CHDB_CONFIG)
    code = textwrap.dedent(f"""
        import os, sys, traceback
        from tests.schemas.test_cluster_ddl import engine_checks
        try:
            engine_checks({str(tmp_path)!r})
            print("ENGINE CHECKS PASSED")
        except BaseException:
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # closing an engine with testkeeper tables can hang or abort: skip it
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if "ENGINE CHECKS PASSED" not in done.stdout:
        pytest.fail(f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-8000:]}", pytrace=False)


_OPEN: list[Any] = []


def engine_checks(folder: str) -> None:
    """Every check chdb can run (see the module docstring); run in a child process."""
    import clickhouse_connect

    def client(database: str | None = None) -> Any:
        opened = clickhouse_connect.get_client(interface="chdb", path=f"{folder}/data", database=database,
                                               chdb_options={"config-file": f"{folder}/config.xml"})
        _OPEN.append(opened)  # never closed: the child process exits without shutting the engine down
        return opened

    admin = client()
    assert admin.query("SELECT count() FROM system.clusters WHERE cluster = {c:String} AND is_local",
                       parameters={"c": CLUSTER}).result_rows == [(1,)]
    for database in ("plain", "repl", "clust"):
        admin.command(f"CREATE DATABASE {database}")
    plain, repl, clust = client("plain"), client("repl"), client("clust")
    migrate(plain)
    check_replicated_tables_match_the_single_node_tables(plain, repl)
    check_on_cluster_statements_reach_the_ddl_queue(repl)
    check_distributed_schema_gives_single_node_answers(plain, clust)


def _error(client: Any, sql: str) -> str:
    try:
        client.command(sql)
    except Exception as exc:  # noqa: BLE001 - the message is the result
        return str(exc)
    return ""


def check_on_cluster_statements_reach_the_ddl_queue(client: Any) -> None:
    """Each statement parses and resolves its cluster: it fails only for want of a DDL worker.

    Run where the local tables exist (as on a cluster, where ``T_local ON CLUSTER`` ran before):
    ``CREATE TABLE T ON CLUSTER AS T_local`` reads ``T_local``'s columns on the initiator first.
    """
    tables = "SELECT count() FROM system.tables WHERE database = currentDatabase()"
    before = client.query(tables).result_rows
    statements = clusterize(MIGRATIONS_DDL, CLUSTER) + [s for _, c in cluster_statements() for s in c]
    for statement in statements:
        assert "QUERY_IS_PROHIBITED" in _error(client, statement), statement[:200]
    unknown = clusterize(MIGRATIONS_DDL, "no_such_cluster")[0]
    assert "CLUSTER_DOESNT_EXIST" in _error(client, unknown)
    assert client.query(tables).result_rows == before


def _tables(client: Any, database: str) -> dict[str, dict[str, Any]]:
    rows = client.query(
        "SELECT name, engine, engine_full, sorting_key, partition_key, primary_key, dependencies_table, "
        "create_table_query FROM system.tables WHERE database = {d:String}", parameters={"d": database})
    return {r[0]: dict(zip(rows.column_names, r)) for r in rows.result_rows}


def _columns(client: Any, database: str, table: str) -> list[tuple]:
    return client.query(
        "SELECT name, type, default_kind, default_expression, compression_codec FROM system.columns "
        "WHERE database = {d:String} AND table = {t:String} ORDER BY position",
        parameters={"d": database, "t": table}).result_rows


def _indices(client: Any, database: str, table: str) -> list[tuple]:
    return client.query(
        "SELECT name, type_full, expr, granularity FROM system.data_skipping_indices "
        "WHERE database = {d:String} AND table = {t:String} ORDER BY name",
        parameters={"d": database, "t": table}).result_rows


def _replica(client: Any, table: str) -> tuple[str, str]:
    """The table's ZooKeeper path and replica name, macros expanded."""
    rows = client.query("SELECT zookeeper_path, replica_name FROM system.replicas "
                        "WHERE database = currentDatabase() AND table = {t:String}", parameters={"t": table})
    return tuple(rows.result_rows[0])  # type: ignore[return-value]


def check_replicated_tables_match_the_single_node_tables(plain: Any, repl: Any) -> None:
    """The cluster DDL, ``ON CLUSTER`` stripped and nothing else: Replicated* tables for real."""
    for statement in clusterize(MIGRATIONS_DDL, CLUSTER) + [s for _, c in cluster_statements() for s in c]:
        repl.command(re.sub(r" ON CLUSTER \S+", "", statement))
    single, clustered = _tables(plain, "plain"), _tables(repl, "repl")
    for name, table in single.items():
        if table["engine"] == "MaterializedView":
            view = clustered[name]["create_table_query"]
            target = re.search(r" TO plain\.(\w+)", table["create_table_query"])[1]  # type: ignore[index]
            assert re.search(rf" TO repl\.{target}_local\b", view), view
            continue
        local, distributed = clustered[f"{name}_local"], clustered[name]
        assert local["engine"] == "Replicated" + table["engine"], name
        assert _replica(repl, f"{name}_local") == (f"/clickhouse/tables/01/repl/{name}_local", "r1"), name
        unreplicated = local["engine_full"]
        for pattern, replacement in _UNREPLICATE:
            unreplicated = pattern.sub(replacement, unreplicated)
        assert unreplicated == table["engine_full"], name  # same partitioning, ORDER BY, TTL, settings
        for key in ("sorting_key", "partition_key", "primary_key"):
            assert local[key] == table[key], (name, key)
        # the views hang on the local table, none on the Distributed one (they would count twice)
        assert sorted(local["dependencies_table"]) == sorted(table["dependencies_table"]), name
        assert distributed["engine"] == "Distributed" and distributed["dependencies_table"] == [], name
        assert _columns(repl, "repl", f"{name}_local") == _columns(plain, "plain", name), name
        assert _columns(repl, "repl", name) == _columns(plain, "plain", name), name
        assert _indices(repl, "repl", f"{name}_local") == _indices(plain, "plain", name), name


class OneNode:
    """A client that runs what chdb can of cluster DDL (:func:`single_node`) and records it as sent."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[str] = []

    def command(self, sql: str) -> Any:
        self.sent.append(sql)
        return self.client.command(single_node(sql))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def check_distributed_schema_gives_single_node_answers(plain: Any, clust: Any) -> None:
    """``migrate(cluster=...)`` on plain engines, seeded through the Distributed tables."""
    import datetime as dt

    from dashboards.seed import seed

    with pytest.raises(RuntimeError, match="migrated without LLMWATCH_CLICKHOUSE_CLUSTER"):
        migrate(OneNode(plain), cluster=CLUSTER)  # a single-node database is not silently kept as is
    node = OneNode(clust)
    assert migrate(node, cluster=CLUSTER) and migrate(node, cluster=CLUSTER) == []  # the ledger is read back
    assert node.sent and all(re.search(r" ON CLUSTER llmwatch_test\s", s) for s in node.sent)
    end = dt.datetime.now(dt.timezone.utc)
    assert seed(plain, rows=3000, end=end, hours=2) == seed(clust, rows=3000, end=end, hours=2)
    check_panels_agree(plain, clust, end)
    check_replays_collapse_and_are_seen(clust)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _sort_key(row: tuple) -> str:
    return repr([f"{v:.6g}" if isinstance(v, float) else v for v in row])


def check_panels_agree(plain: Any, clust: Any, end: Any) -> None:
    """Every dashboard panel and variable (rollups, raw reads, the flagged-call join) agrees."""
    import datetime as dt

    from dashboards.queries import expand, iter_panels, iter_variables, load_dashboards
    from tests.dashboards.conftest import ALL

    start = end.replace(second=0, microsecond=0) - dt.timedelta(hours=2)
    queries = [q.sql for d in load_dashboards() for q in [*iter_panels(d), *iter_variables(d)]]
    assert len(queries) > 20
    for sql in queries:
        sql = expand(sql, start, end, ALL, 300)
        want, got = plain.query(sql).result_rows, clust.query(sql).result_rows
        assert want, sql
        assert _same(sorted(want, key=_sort_key), sorted(got, key=_sort_key)), sql


def check_replays_collapse_and_are_seen(clust: Any) -> None:
    """A replayed batch, inserted through the Distributed table, collapses under FINAL; the replay
    and duplicate guards (which query the Distributed table) find the stored rows."""
    from streams.storage.duplicate_guard import DuplicateGuard
    from streams.storage.replay_guard import ReplayGuard

    count = "SELECT count() FROM llm_calls FINAL"
    before = clust.query(count).result_rows
    result = clust.query("SELECT * EXCEPT ingested_at FROM llm_calls ORDER BY event_id LIMIT 20")
    rows = [list(r) for r in result.result_rows]
    clust.insert("llm_calls", rows, column_names=result.column_names)
    assert clust.query(count).result_rows == before
    assert ReplayGuard(clust, "llm_calls", result.column_names).filter(rows) == []
    assert DuplicateGuard(clust, "llm_calls", result.column_names).filter(rows) == []
