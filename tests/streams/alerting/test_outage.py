"""A webhook receiver that accepts connections and never answers does not slow storage.

Before, the alert engine's ticks ran on the ClickHouse thread, HTTP posts and backoff sleeps
included: such a receiver (5 s timeout, 3 retries) held every insert and commit for ~20 s per
tick. Now delivery has a thread of its own; this measures ingest latency (produce to committed)
during a 60 s outage on the real worker, broker and engine.
"""
from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from pathlib import Path

from streams.pipeline.codec import EventCodec
from streams.devtools.kafka_local import free_port
from streams.kafka.topics import ensure_topics
from tests.streams.agents.test_ingest_worker import committed_lag, valid_event
from tests.streams.worker_harness import WorkerProcess, produce, query, unique_settings

CODEC = EventCodec()
OUTAGE_S = 60


class HungReceiver:
    """Accepts TCP connections and never reads or answers (keeps them open)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def rules_file(path: Path, port: int) -> Path:
    path.write_text(f"""
channels:
  oncall:
    type: webhook
    url: http://127.0.0.1:{port}/hook
    timeout: 5s
    max_retries: 3
    backoff: 500ms
rules:
  - name: errors
    kind: error_rate
    window: 5m
    threshold: 0.1
    min_events: 5
    for: 0s
    deliveries: [oncall]
""")
    return path


def events(start: int, n: int) -> list[tuple[bytes, bytes]]:
    return [(b"k", CODEC.encode_json({**valid_event(i), "event_id": f"o-{i}", "status": "error" if i % 2 else "ok"}))
            for i in range(start, start + n)]


def test_a_hung_webhook_does_not_slow_inserts(kafka_bootstrap, tmp_path) -> None:
    receiver = HungReceiver()
    s = unique_settings(kafka_bootstrap, tmp_path, detectors="", alert_interval_s=1.0, web_port=free_port(),
                        alert_rules=str(rules_file(tmp_path / "alerts.yaml", receiver.port)))
    ensure_topics(s)
    worker = WorkerProcess(s).start()
    latencies: list[float] = []
    sent = 0
    try:
        worker.wait_ready(timeout=90)
        asyncio.run(produce(s.kafka_bootstrap, s.calls_topic, events(0, 40)))
        sent = 40
        deadline = time.monotonic() + 30
        while not receiver.accepted and time.monotonic() < deadline:  # the alert fired, its post hangs
            time.sleep(0.2)
        assert receiver.accepted, "the rule should have fired and posted\n" + worker.log_text()[-2000:]
        outage_end = time.monotonic() + OUTAGE_S
        while time.monotonic() < outage_end:
            started = time.monotonic()
            asyncio.run(produce(s.kafka_bootstrap, s.calls_topic, events(sent, 20)))
            sent += 20
            while committed_lag(s) != 0:
                worker.check_alive()
                assert time.monotonic() - started < 30, "ingest stalled behind the hung webhook"
                time.sleep(0.05)
            latencies.append(time.monotonic() - started)
            time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
        assert len(receiver.accepted) >= 2  # delivery kept retrying all along
    finally:
        worker.stop()
        receiver.close()
    print(f"ingest latency during the outage: median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s over {len(latencies)} bursts")
    # A tick on the ClickHouse thread held inserts for 4 x 5 s; now they are not held at all.
    assert max(latencies) < 3.0, latencies
    assert query(s, "SELECT count() FROM llm_calls") == [(sent,)]
