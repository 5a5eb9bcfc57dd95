"""Shared fixtures of the storage tests."""
from __future__ import annotations

import asyncio
from typing import Iterator

import pytest

from streams.config import Settings
from streams.worker.services import Services


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Services]:
    """Worker services on an embedded engine of the test module's own (migrated, empty)."""
    svc = Services(Settings(home=str(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))))
    asyncio.run(svc.open_clickhouse())
    try:
        yield svc
    finally:
        svc.client.close()
