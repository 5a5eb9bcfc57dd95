"""The drift checkpoint table puts each app's checkpoint in the changelog partition that the
worker owning the app's calls recovers (a JSON-encoded key hashed elsewhere, so a worker taking
over a partition restored nothing and folded the app's events into empty state)."""
from __future__ import annotations

import faust
import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.agents.drift import checkpoint_table
from streams.pipeline.drift_state import app_partition

APPS = ["support-bot", "rag-search", "code-assist", "billing", "ünïcode-app", "x"]


@pytest.mark.parametrize("partitions", [1, 4, 7, 12])
def test_each_app_checkpoint_goes_to_the_partition_of_its_calls(partitions):
    table = checkpoint_table(faust.App("drift-table-test", broker="kafka://localhost:1"), partitions)
    every = list(range(partitions))
    for app in APPS:
        key, _ = table.changelog_topic.prepare_key(app.encode(), table.key_serializer)
        assert DefaultPartitioner()(key, every, every) == app_partition(app, partitions), app


def test_checkpoint_values_are_text_the_changelog_recovery_can_decode():
    table = checkpoint_table(faust.App("drift-table-test-2", broker="kafka://localhost:1"), 4)
    value, _ = table.changelog_topic.prepare_value('{"format": 2}', table.value_serializer)
    assert value.decode("utf-8")
    assert table.changelog_topic.schema.loads_value(table.app, type("M", (), {"value": value, "headers": {}})()) == '{"format": 2}'
