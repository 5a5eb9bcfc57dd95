"""Cluster DDL from the single-node migrations: a pure text transform, applied after ``{placeholders}``.

With ``LLMWATCH_CLICKHOUSE_CLUSTER`` set, every statement of a migration goes through
:func:`clusterize`:

* a data table ``T`` (a ``*MergeTree`` engine) is created as ``T_local`` on every node, with the
  ``Replicated*`` counterpart of its engine (engine arguments such as a version column follow the
  two replication arguments), plus a ``Distributed`` table named ``T`` over ``T_local``. The
  application keeps reading and writing ``T``, so no query in the code changes;
* a materialized view reads the local source table and writes the local rollup table, on every node:
  a row inserted through ``T`` lands in one shard's ``T_local``, and that shard's views count it once;
* every ``CREATE`` and ``ALTER`` carries ``ON CLUSTER``.

Sharding keys (:data:`SHARDING_KEYS`) hash columns of the table's sorting key, so two rows that
``ReplacingMergeTree`` collapses (equal sorting keys) always land on the same shard, and ``FINAL``
(which collapses per shard) stays exact. Raw rows hash ``event_id``: a replayed or re-sent event
goes to its original's shard, and an event's verdicts (``detections``) live with its call.

Not DDL, so not done here: exactly-once needs the writer to insert with
``distributed_foreground_insert = 1`` (else a Distributed insert returns once queued on the node it
reached, before the shards hold the rows the replay guard looks for); ``ALTER TABLE ... DELETE``
must name the local tables (``clusterize`` gives the statement: rollup repair needs it).

>>> ddl = clusterize("CREATE TABLE IF NOT EXISTS t (id String, v UInt64) "
...                  "ENGINE = ReplacingMergeTree(v) ORDER BY id", "prod")
>>> print(ddl[0])
CREATE TABLE IF NOT EXISTS t_local ON CLUSTER prod (id String, v UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/t_local', '{replica}', v) ORDER BY id
>>> print(ddl[1])
CREATE TABLE IF NOT EXISTS t ON CLUSTER prod AS t_local ENGINE = Distributed(prod, currentDatabase(), t_local, cityHash64(id))
>>> clusterize("SELECT 1", "")
['SELECT 1']
"""
from __future__ import annotations

import re

LOCAL_SUFFIX = "_local"
ZOOKEEPER_PATH = "/clickhouse/tables/{shard}/{database}/"

#: Sharding key per data table: an expression over sorting-key columns only (checked), so rows that
#: collapse share a shard. A table not listed hashes ``event_id`` when its sorting key has it (raw
#: rows of one event stay together), else its whole sorting key (rollups: only repair inserts go
#: through their Distributed table; the views write each shard's rows locally).
SHARDING_KEYS: dict[str, str] = {
    "llm_calls": "cityHash64(event_id)",  # replays and producer re-sends carry the same event_id
    "detections": "cityHash64(event_id)",  # co-sharded with llm_calls: an event's verdicts next to its call
    "quality_scores": "cityHash64(event_id)",  # split from detections: next to the call's verdict
    "drift_reports": "cityHash64(report_id)",
    "prompt_versions": "cityHash64(name, version)",  # a re-publish replaces its row on its shard  # a re-emitted report replaces itself on its shard
    "alerts": "cityHash64(notification_id)",  # every revision of a notification on one shard
    "alert_deliveries": "cityHash64(notification_id)",  # next to the notification they deliver
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLUSTER = re.compile(r"[A-Za-z0-9_.{}-]+")
_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?([A-Za-z_]\w*)(?![\w.])", re.I)
_CREATE_VIEW = re.compile(
    r"CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_]\w*)(\s+TO\s+)([A-Za-z_]\w*)(?![\w.])", re.I)
_ALTER = re.compile(r"ALTER\s+TABLE\s+([A-Za-z_]\w*)(?![\w.])", re.I)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(\w+)", re.I)
_ORDER_BY = re.compile(r"\bORDER\s+BY\s+", re.I)
_SOURCE = re.compile(r"\b(FROM|JOIN)(\s+)([A-Za-z_]\w*)\b(?![.(])(\s+AS\s+[A-Za-z_]\w*)?", re.I)
_MODIFY_QUERY = re.compile(r"\s*MODIFY\s+QUERY\b", re.I)
_COLUMN_CHANGE = re.compile(r"\b(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)


def clusterize(statement: str, cluster: str) -> list[str]:
    """The statement(s) that replace one single-node DDL statement on ``cluster``.

    ``cluster == ""`` returns ``[statement]`` untouched. Handles ``CREATE TABLE``, ``CREATE
    MATERIALIZED VIEW ... TO`` and ``ALTER TABLE``; anything else raises ``ValueError`` (write its
    cluster form by hand rather than run it on one node only).

    >>> clusterize("ALTER TABLE t ADD COLUMN c String", "prod")
    ['ALTER TABLE t_local ON CLUSTER prod ADD COLUMN c String', 'ALTER TABLE t ON CLUSTER prod ADD COLUMN c String']
    """
    if not cluster:
        return [statement]
    name = cluster_sql(cluster)
    text = statement.strip()
    if _CREATE_TABLE.match(text):
        return _create_table(text, name)
    if _CREATE_VIEW.match(text):
        return [_create_view(text, name)]
    if _ALTER.match(text):
        return _alter(text, name)
    raise ValueError(f"no cluster form for this statement; write it by hand: {text[:80]!r}")


def cluster_sql(cluster: str) -> str:
    """The cluster name as SQL: a bare identifier, else a string literal (``'{cluster}'`` macro).

    >>> cluster_sql("prod"), cluster_sql("{cluster}")
    ('prod', "'{cluster}'")
    """
    if not _CLUSTER.fullmatch(cluster):
        raise ValueError(f"cluster name {cluster!r}: use letters, digits, _ . - or a {{macro}}")
    return cluster if _NAME.fullmatch(cluster) else f"'{cluster}'"


def replicated_engine(statement: str, table: str) -> str | None:
    """``statement`` with its ``*MergeTree`` engine made ``Replicated*`` (``None``: not a MergeTree).

    >>> replicated_engine("CREATE TABLE a (x UInt8) ENGINE = SummingMergeTree((x)) ORDER BY x", "a")
    "CREATE TABLE a (x UInt8) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/a', '{replica}', (x)) ORDER BY x"
    """
    match = _ENGINE.search(statement)
    if match is None or not match[1].endswith("MergeTree") or match[1].startswith("Replicated"):
        return None
    args, end = _engine_args(statement, match.end())
    replication = f"'{ZOOKEEPER_PATH}{table}', '{{replica}}'"
    engine = f"Replicated{match[1]}({replication}{', ' + args if args else ''})"
    return statement[: match.start(1)] + engine + statement[end:]


def _engine_args(text: str, pos: int) -> tuple[str, int]:
    """The engine's argument text (balanced parentheses) after ``pos``, and where the engine ends."""
    start = pos + len(text[pos:]) - len(text[pos:].lstrip())
    if start >= len(text) or text[start] != "(":
        return "", pos
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i].strip(), i + 1
    raise ValueError(f"unbalanced engine arguments: {text[start:start + 80]!r}")


def _create_table(text: str, cluster: str) -> list[str]:
    head = _CREATE_TABLE.match(text)
    assert head is not None
    table, exists = head[2], "IF NOT EXISTS " if head[1] else ""
    local = table + LOCAL_SUFFIX
    on_cluster = f"{local} ON CLUSTER {cluster}"
    replicated = replicated_engine(text, local)
    if replicated is None:  # Memory, Null, ...: the same table on every node, not sharded
        return [text[: head.start(2)] + f"{table} ON CLUSTER {cluster}" + text[head.end(2):]]
    key = sharding_key(table, sorting_key(text))
    distributed = (f"CREATE TABLE {exists}{table} ON CLUSTER {cluster} AS {local} "
                   f"ENGINE = Distributed({cluster}, currentDatabase(), {local}, {key})")
    return [replicated[: head.start(2)] + on_cluster + replicated[head.end(2):], distributed]


def sorting_key(statement: str) -> list[str]:
    """The ``ORDER BY`` expressions of a ``CREATE TABLE`` (top-level commas split them).

    >>> sorting_key("CREATE TABLE a (x UInt8, y UInt8) ENGINE = MergeTree ORDER BY (x, toDate(y)) TTL y")
    ['x', 'toDate(y)']
    """
    match = _ORDER_BY.search(statement)
    if match is None:
        raise ValueError("a MergeTree table needs ORDER BY to be sharded")
    rest = statement[match.end():]
    if rest.startswith("("):
        inner, _ = _engine_args(rest, 0)
    else:
        inner = re.split(r"\s", rest, maxsplit=1)[0]
    items, depth, current = [], 0, ""
    for char in inner:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    return [item for item in [*items, current.strip()] if item]


def sharding_key(table: str, order_by: list[str]) -> str:
    """The table's sharding key: its :data:`SHARDING_KEYS` entry, else ``cityHash64(event_id)`` when
    ``event_id`` is in the sorting key, else a hash of the whole sorting key.

    Raises if a listed key reads no column (``rand()``) or one outside the sorting key: rows that
    collapse could then sit on two shards, and ``FINAL`` would keep both.

    >>> sharding_key("llm_calls", ["service_name", "timestamp", "event_id"])
    'cityHash64(event_id)'
    >>> sharding_key("detection_replays", ["detector", "timestamp", "event_id"])
    'cityHash64(event_id)'
    >>> sharding_key("llm_calls_1m", ["service_name", "minute"])
    'cityHash64(service_name, minute)'
    """
    key = SHARDING_KEYS.get(table)
    if key is None:
        return "cityHash64(event_id)" if "event_id" in order_by else f"cityHash64({', '.join(order_by)})"
    columns = set(_NAME.findall(re.sub(r"\w+\(", "(", key)))
    if not columns or not columns <= set(order_by):
        raise ValueError(f"{table}: sharding key {key} must read columns of its sorting key {order_by} "
                         f"only (and at least one); it reads {sorted(columns)}: outside its sorting key")
    return key


def _local_sources(query: str) -> str:
    """``FROM t`` / ``JOIN t`` made ``FROM t_local AS t``: qualified columns (``t.c``) still resolve.

    Textual: a ``FROM`` that is no table source (``extract(hour FROM ts)``) would be renamed too.

    >>> _local_sources(" SELECT sum(c.x) FROM calls AS c JOIN d ON d.id = c.id")
    ' SELECT sum(c.x) FROM calls_local AS c JOIN d_local AS d ON d.id = c.id'
    """
    def local(match: re.Match[str]) -> str:
        alias = match[4] or f" AS {match[3]}"
        return f"{match[1]}{match[2]}{match[3]}{LOCAL_SUFFIX}{alias}"
    return _SOURCE.sub(local, query)


def _create_view(text: str, cluster: str) -> str:
    head = _CREATE_VIEW.match(text)
    assert head is not None
    return (text[: head.end(1)] + f" ON CLUSTER {cluster}" + head[2] + head[3] + LOCAL_SUFFIX
            + _local_sources(text[head.end():]))


def _alter(text: str, cluster: str) -> list[str]:
    """``MODIFY QUERY`` alters a view (on every node); other ALTERs alter the local table, and
    column changes the Distributed table too (it must keep the same columns)."""
    head = _ALTER.match(text)
    assert head is not None
    rest = text[head.end():]
    if _MODIFY_QUERY.match(rest):
        return [text[: head.end()] + f" ON CLUSTER {cluster}" + _local_sources(rest)]
    local = text[: head.start(1)] + head[1] + LOCAL_SUFFIX + f" ON CLUSTER {cluster}" + rest
    if _COLUMN_CHANGE.search(rest):
        return [local, text[: head.end()] + f" ON CLUSTER {cluster}" + rest]
    return [local]
