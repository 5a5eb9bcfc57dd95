"""Shared pytest fixtures."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# mutmut 3.7 (`./run.sh mutation`) reads Item._nodeid, which pytest 9 no longer sets: give it
# the public name.
if not hasattr(pytest.Item, "_nodeid"):
    pytest.Item._nodeid = property(lambda self: self.nodeid)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of one real Kafka broker shared by the whole test session.

    Set ``LLMWATCH_TEST_KAFKA`` to reuse an already running broker instead.
    """
    if os.environ.get("LLMWATCH_TEST_KAFKA"):
        yield os.environ["LLMWATCH_TEST_KAFKA"]
        return
    from streams.devtools.kafka_local import LocalKafka

    kafka = LocalKafka(tmp_path_factory.mktemp("kafka")).start(timeout=120)
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()
