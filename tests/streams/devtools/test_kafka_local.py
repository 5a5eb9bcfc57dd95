"""The local Kafka broker: real JVM, real aiokafka clients, no mocks."""
from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from streams.cli import app as cli_app
from streams.devtools.kafka_local import (
    LocalKafka,
    create_topics,
    dev_down,
    dev_status,
    dev_up,
    ensure_kafka_jars,
    free_port,
)


def java_processes_under(path: Path) -> list[int]:
    """Pids of live processes whose command line mentions ``path``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if str(path).encode() in cmdline and b"java" in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


async def _round_trip(bootstrap: str, topic: str) -> list[bytes]:
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all") as producer:
        for i in range(3):
            await producer.send_and_wait(topic, f"msg-{i}".encode(), key=b"k")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}",
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < 3:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            values += [m.value for msgs in batch.values() for m in msgs]
        return values
    finally:
        await consumer.stop()


def test_jars_are_cached() -> None:
    libs = ensure_kafka_jars()
    assert ensure_kafka_jars() == libs
    assert any(libs.glob("kafka_2.13-*.jar")) and any(libs.glob("log4j-slf4j-impl-*.jar"))


def test_produce_consume_round_trip(kafka_bootstrap: str) -> None:
    topic = f"rt-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, {topic: 2})
    assert asyncio.run(_round_trip(kafka_bootstrap, topic)) == [b"msg-0", b"msg-1", b"msg-2"]


def test_create_topics_is_idempotent(kafka_bootstrap: str) -> None:
    topics = {f"idem-{uuid.uuid4().hex[:8]}": 3, f"idem-{uuid.uuid4().hex[:8]}": 1}
    create_topics(kafka_bootstrap, topics)
    create_topics(kafka_bootstrap, topics)

    async def partitions() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(list(topics))}
        finally:
            await admin.close()

    assert asyncio.run(partitions()) == topics


def test_start_stop_leaves_no_java_process(tmp_path: Path) -> None:
    port = free_port()
    with LocalKafka(tmp_path, port=port) as kafka:
        assert kafka.is_running()
        assert kafka.bootstrap == f"127.0.0.1:{port}"
        assert java_processes_under(tmp_path) == [kafka.pid]
    assert not kafka.is_running()
    assert java_processes_under(tmp_path) == []
    assert (tmp_path / "logs" / "meta.properties").exists()


def test_dev_up_down(tmp_path: Path) -> None:
    assert dev_status(tmp_path) is None
    port = free_port()
    broker = dev_up(tmp_path, port=port)
    try:
        assert broker.bootstrap == f"127.0.0.1:{port}" and not broker.already_running
        assert json.loads((tmp_path / "kafka.json").read_text())["pid"] == broker.pid
        again = dev_up(tmp_path)  # reports the running one instead of starting a second
        assert again.already_running and again.pid == broker.pid
        assert java_processes_under(tmp_path) == [broker.pid]

        result = CliRunner().invoke(cli_app, ["dev", "status", "--data-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert f"LLMWATCH_KAFKA=127.0.0.1:{port}" in result.output
    finally:
        stopped = dev_down(tmp_path)
    assert stopped is not None and stopped.pid == broker.pid
    assert dev_status(tmp_path) is None and not (tmp_path / "kafka.json").exists()
    assert java_processes_under(tmp_path) == []
    assert dev_down(tmp_path) is None
    result = CliRunner().invoke(cli_app, ["dev", "status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "not running" in result.output
