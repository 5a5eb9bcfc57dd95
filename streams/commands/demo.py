"""``llmwatch demo``: the whole pipeline on this machine, embedded defaults, about a minute."""
from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()

SUMMARY_SQL = """
SELECT service_name, request_model, prompt_version,
       count() AS calls,
       countIf(status = 'error') AS errors,
       round(quantile(0.5)(latency_ms)) AS p50_ms,
       round(quantile(0.95)(latency_ms)) AS p95_ms,
       sum(input_tokens + output_tokens) AS tokens,
       round(sum(ifNull(cost_usd, 0)), 4) AS cost_usd
FROM llm_calls FINAL
GROUP BY service_name, request_model, prompt_version
ORDER BY service_name, request_model, prompt_version
"""


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        duration: float = typer.Option(60.0, help="Seconds of generated traffic."),
        rate: float = typer.Option(200.0, help="Messages per second from the generator."),
        home: Path = typer.Option(Path("var/demo"), help="Demo state folder (Kafka, ClickHouse); wiped first."),
        keep: bool = typer.Option(False, help="Keep the previous demo's data instead of starting clean."),
    ) -> None:
        """Start Kafka, run the worker and the traffic generator, then summarise what landed."""
        run_demo(duration, rate, home.resolve(), keep)


def run_demo(duration: float, rate: float, home: Path, keep: bool = False) -> None:
    from streams.config import Settings
    from streams.generator import Generator
    from streams.kafka_local import LocalKafka, ensure_kafka_jars, free_port
    from streams.supervisor import WorkerProcess
    from streams.topics import ensure_topics

    if home.exists() and not keep:
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    ensure_kafka_jars()
    kafka = LocalKafka(home / "kafka", port=free_port())
    with console.status("Starting Kafka (KRaft, single node)…"):
        kafka.start()
    console.print(f"[green]✓[/] Kafka up at {kafka.bootstrap}")
    settings = Settings(home=str(home), kafka_bootstrap=kafka.bootstrap)
    worker = WorkerProcess(settings)
    try:
        ensure_topics(settings)
        worker.start()
        console.print(f"[green]✓[/] worker started (log: {worker.logs[-1]})")
        console.print(f"Generating traffic for {duration:.0f}s at {rate:.0f} msg/s (planted attacks, drift, errors, malformed)…")
        stats = asyncio.run(
            Generator(seed=int(time.time()) % 10_000, rate=rate).run(
                kafka.bootstrap, settings.calls_topic, rate=rate, duration_s=duration, partitions=None
            )
        )
        with console.status("Waiting for the worker to commit everything…"):
            worker.wait_caught_up(timeout=180)
        if not worker.alive():
            raise typer.Exit(_fail(f"the worker died; see {worker.logs[-1]}"))
        dead = asyncio.run(_dead_letter_reasons(settings))
    finally:
        if worker.proc is not None:
            with console.status("Stopping the worker…"):
                worker.stop()
        with console.status("Stopping Kafka…"):
            kafka.stop()
    _print_summary(settings, stats, dead, duration)


async def _dead_letter_reasons(settings) -> Counter:
    from streams.dead_letter import HEADER_REASON, parse_headers
    from streams.topic_reader import read_topic

    records = await read_topic(settings.kafka_bootstrap, settings.dead_letter_topic, timeout_s=10)
    return Counter(parse_headers(r.headers).get(HEADER_REASON, "?") for r in records)


def _print_summary(settings, stats, dead: Counter, duration: float) -> None:
    from streams.clickhouse import connect

    client = connect(settings.dsn)
    try:
        result = client.query(SUMMARY_SQL)
    finally:
        client.close()
    table = Table(title="What landed in ClickHouse (llm_calls)", show_lines=False)
    for name in result.column_names:
        table.add_column(name, justify="right" if name not in ("service_name", "request_model", "prompt_version") else "left")
    total_calls = 0
    for row in result.result_rows:
        total_calls += row[3]
        table.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    console.print(table)
    dlq = Table(title="Dead-lettered messages (llm.calls.dlq)")
    dlq.add_column("reason")
    dlq.add_column("count", justify="right")
    for reason, count in dead.most_common():
        dlq.add_row(reason, str(count))
    console.print(dlq)
    console.print(
        f"[bold]{stats.produced:,}[/] messages produced in {stats.elapsed_s:.0f}s "
        f"({stats.rate:.0f}/s): [green]{total_calls:,} calls stored[/], "
        f"[yellow]{sum(dead.values()):,} dead-lettered[/]. Data: {settings.dsn}"
    )


def _fail(message: str) -> int:
    console.print(f"[red]✗ {message}[/]")
    return 1
