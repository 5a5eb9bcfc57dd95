"""Every llmwatch data contract: Avro schemas (``*.avsc``) and ClickHouse migrations (``*.sql``).

File names carry the version (``llm_call.v2.avsc``, ``ch_0001_llm_calls.sql``) and the files ship
inside the installed package, so the worker and the producer read the same contracts.

>>> latest_schema("llm_call")["name"]
'LLMCall'
>>> local_schema_ids()[1]
'llm_call.v1.avsc'
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from schemas.cluster import clusterize

SCHEMA_DIR = Path(__file__).resolve().parent
EVENT_SUBJECT = "llm.calls-value"
#: Where the ``prompt_label`` field (llm_call v3) is stored: ``llm_calls.attributes`` (OTel's name)
PROMPT_LABEL_ATTRIBUTE = "gen_ai.prompt.label"
_VERSIONED = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.avsc$")
_MIGRATION = re.compile(r"^ch_(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


def schema_path(filename: str) -> Path:
    """Absolute path of a contract file shipped in this package."""
    path = SCHEMA_DIR / filename
    if not path.is_file():
        raise FileNotFoundError(f"no contract file {filename!r} in {SCHEMA_DIR}")
    return path


@lru_cache(maxsize=None)
def load_schema(filename: str) -> dict[str, Any]:
    """Parse one ``.avsc`` file into its JSON form."""
    return json.loads(schema_path(filename).read_text())


def schema_versions(name: str) -> list[tuple[int, str]]:
    """``[(version, filename), ...]`` of one schema, oldest first."""
    found = []
    for path in SCHEMA_DIR.glob(f"{name}.v*.avsc"):
        match = _VERSIONED.match(path.name)
        if match and match["name"] == name:
            found.append((int(match["version"]), path.name))
    if not found:
        raise FileNotFoundError(f"no versions of schema {name!r} in {SCHEMA_DIR}")
    return sorted(found)


def latest_schema(name: str) -> dict[str, Any]:
    """The newest version of a schema: the reader schema the worker decodes into."""
    return load_schema(schema_versions(name)[-1][1])


@lru_cache(maxsize=1)
def local_schema_ids() -> dict[int, str]:
    """Confluent schema id -> schema file, from ``registry.json`` (ids unique across subjects)."""
    manifest = json.loads(schema_path("registry.json").read_text())
    ids: dict[int, str] = {}
    for subject, versions in manifest["subjects"].items():
        for schema_id, filename in versions.items():
            if int(schema_id) in ids:
                raise ValueError(f"schema id {schema_id} is used twice in registry.json ({subject})")
            ids[int(schema_id)] = filename
    return ids


def subject_ids(subject: str = EVENT_SUBJECT) -> dict[int, str]:
    """Schema id -> file for one subject, in registration order."""
    manifest = json.loads(schema_path("registry.json").read_text())
    return {int(k): v for k, v in manifest["subjects"][subject].items()}


@dataclass(frozen=True)
class Migration:
    """One ClickHouse DDL file: applied in version order, recorded once applied."""

    version: int
    name: str
    sql: str

    def statements(self, cluster: str = "", **params: Any) -> list[str]:
        """The file's statements with ``{param}`` placeholders filled, split on ``;`` lines.

        With ``cluster`` set each statement becomes its cluster form (``ON CLUSTER``, ``Replicated*``
        local tables, ``Distributed`` tables: :func:`schemas.cluster.clusterize`); with ``""`` the
        statements are the file's own.
        """
        text = self.sql
        for key, value in params.items():
            text = text.replace("{" + key + "}", str(value))
        lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
        statements = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
        if not cluster:
            return statements
        return [out for statement in statements for out in clusterize(statement, cluster)]


def migrations() -> list[Migration]:
    """All ClickHouse migrations shipped in this package, oldest first."""
    found = []
    for path in SCHEMA_DIR.glob("ch_*.sql"):
        match = _MIGRATION.match(path.name)
        if match:
            found.append(Migration(int(match["version"]), match["name"], path.read_text()))
    return sorted(found, key=lambda m: m.version)
