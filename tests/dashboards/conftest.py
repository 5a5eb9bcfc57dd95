"""A seeded embedded ClickHouse shared by the dashboard tests (one chdb data path per process)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from dashboards.seed import SeedSummary, seed
from streams.storage.clickhouse import connect, migrate

# The selection every panel is run with: All for the standard variables, two versions to compare.
ALL = {
    "app": ["code-assist", "rag-search", "support-bot"],
    "model": ["claude-3-5-sonnet", "gpt-4o-mini", "llama-3.1-70b"],
    "prompt_version": ["v1", "v2", "v3"],
    "environment": ["development", "production", "staging"],
    "version_a": ["v1"],
    "version_b": ["v3"],
}


# Package scope: the engine is released when the dashboard tests end, since a process can open
# only one embedded data folder at a time and later tests open their own.
@pytest.fixture(scope="package")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, SeedSummary]]:
    """``(client, summary)``: 20k calls over the last 6 hours, their verdicts and drift reports."""
    client = connect(f"chdb://{tmp_path_factory.mktemp('dash-ch')}")
    try:
        migrate(client, raw_ttl_days=90, rollup_ttl_days=400)
        summary = seed(client, rows=20_000, end=dt.datetime.now(dt.timezone.utc), hours=6)
        yield client, summary
    finally:
        client.close()
