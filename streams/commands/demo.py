"""``llmwatch demo``: the whole pipeline on this machine, embedded defaults, about a minute."""
from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Awaitable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

T = TypeVar("T")
console = Console(width=max(120, Console().width))

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


DETECTIONS_SQL = """
SELECT detector, label, count() AS checked, sum(flagged) AS flagged, round(avg(score), 3) AS mean_score
FROM detections FINAL
GROUP BY detector, label
ORDER BY detector, flagged DESC
"""

DRIFT_SQL = """
SELECT service_name, request_model, prompt_version, signal, count() AS alarms, min(window_end) AS first_alarm
FROM drift_reports FINAL
WHERE drifted = 1
GROUP BY service_name, request_model, prompt_version, signal
ORDER BY first_alarm
"""


PROMPT_VERSIONS_SQL = """
SELECT c.service_name, c.prompt_name, c.prompt_version, c.calls, c.errors, c.p95_ms, c.cost_usd,
       q.answers, q.refusal_rate
FROM (
    SELECT service_name, prompt_name, prompt_version, count() AS calls, countIf(status = 'error') AS errors,
           round(quantile(0.95)(latency_ms)) AS p95_ms, round(sum(ifNull(cost_usd, 0)), 4) AS cost_usd
    FROM llm_calls FINAL WHERE prompt_name != '' GROUP BY service_name, prompt_name, prompt_version
) AS c
LEFT JOIN (
    SELECT service_name, prompt_version, count() AS answers, round(avg(flagged), 3) AS refusal_rate
    FROM quality_scores FINAL WHERE metric = 'refusal' GROUP BY service_name, prompt_version
) AS q USING (service_name, prompt_version)
ORDER BY c.service_name, c.prompt_version
"""
# The demo's rollout rule: quality, safety and errors only (a one-minute A/B has noisy latency and cost).
ROLLOUT_RULE = """
rules:
  - name: prompt-rollout
    kind: rollout_regression
    window: 1h
    min_events: 30
    margins:
      quality_rate: {absolute: 0.05}
      flagged_rate: {absolute: 0.05}
      error_rate: {absolute: 0.02, relative: 0.5}
      latency_p95: off
      mean_cost: off
"""


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        duration: float = typer.Option(60.0, help="Seconds of generated traffic."),
        rate: float = typer.Option(40.0, help="Messages per second from the generator (detectors run on every call)."),
        home: Path = typer.Option(Path("var/demo"), help="Demo state folder (Kafka, ClickHouse); wiped first."),
        keep: bool = typer.Option(False, help="Keep the previous demo's data instead of starting clean."),
    ) -> None:
        """Start Kafka, run the worker and the traffic generator, then summarise what landed."""
        run_demo(duration, rate, home.resolve(), keep)


def run_demo(duration: float, rate: float, home: Path, keep: bool = False) -> None:
    from streams.config import Settings
    from streams.devtools.generator import Generator
    from streams.devtools.kafka_local import LocalKafka, ensure_kafka_jars, free_port
    from streams.devtools.supervisor import WorkerDied, WorkerProcess
    from streams.kafka.topics import ensure_topics

    if home.exists() and not keep:
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    ensure_kafka_jars()
    kafka = LocalKafka(home / "kafka", port=free_port())
    with console.status("Starting Kafka (KRaft, single node)…"):
        kafka.start()
    console.print(f"[green]✓[/] Kafka up at {kafka.bootstrap}")
    # Small drift windows so a one-minute demo has enough calls per key to test for drift.
    settings = Settings(
        home=str(home), kafka_bootstrap=kafka.bootstrap, drift_reference_size=100, drift_window_size=50,
        drift_report_interval_s=5.0, web_port=free_port(),
    )
    worker = WorkerProcess(settings)
    try:
        ensure_topics(settings)
        worker.start()
        with console.status(f"Starting the worker (loading the detectors; log: {worker.logs[-1]})…"):
            worker.wait_ready(timeout=300)
        console.print(f"[green]✓[/] worker ready (log: {worker.logs[-1]})")
        console.print(f"Generating traffic for {duration:.0f}s at {rate:.0f} msg/s (planted attacks, drift, errors, malformed)…")
        drift_after = int(rate * duration * 0.5)
        console.print(f"Metrics while it runs: http://127.0.0.1:{settings.web_port}/metrics")
        prompts, rollout_after = _prompt_registry(), int(rate * duration * 0.3)
        if prompts is not None:
            console.print(f"Apps render their prompts from {prompts.registry.root}/ (labels.yaml); the production label's "
                          f"last move is replayed after {rollout_after:,} calls")
        generator = Generator(seed=int(time.time()) % 10_000, rate=rate, drift_after=drift_after,
                              prompts=prompts, rollout_after=rollout_after)
        stats = asyncio.run(
            _while_alive(worker, generator.run(kafka.bootstrap, settings.calls_topic, rate=rate, duration_s=duration, partitions=None))
        )
        with console.status("Waiting for the worker to store and check everything…"):
            worker.wait_caught_up(timeout=600)
            time.sleep(settings.drift_report_interval_s + 1)  # one more drift report
        worker.check_alive()
        dead = asyncio.run(_dead_letter_reasons(settings))
    except WorkerDied as exc:
        raise typer.Exit(_fail(str(exc))) from None
    finally:
        if worker.proc is not None:
            with console.status("Stopping the worker…"):
                worker.stop()
        with console.status("Stopping Kafka…"):
            kafka.stop()
    _print_summary(settings, stats, dead, duration)


async def _while_alive(worker, work: Awaitable[T], poll_s: float = 0.5) -> T:
    """``await work``, cancelled with :class:`WorkerDied` within ``poll_s`` of the worker exiting."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=poll_s)
            if not task.done():
                worker.check_alive()
        return task.result()
    finally:
        task.cancel()


async def _dead_letter_reasons(settings) -> Counter:
    from streams.pipeline.dead_letter import HEADER_REASON, parse_headers
    from streams.kafka.reader import read_topic

    records = await read_topic(settings.kafka_bootstrap, settings.dead_letter_topic, timeout_s=10)
    return Counter(parse_headers(r.headers).get(HEADER_REASON, "?") for r in records)


def _prompt_registry():
    """The repository's prompts/ folder as an app would load it (None when it is not there)."""
    from streams.client.prompts import PromptClient

    for root in (Path.cwd() / "prompts", Path(__file__).resolve().parents[2] / "prompts"):
        if (root / "labels.yaml").is_file():
            return PromptClient(root)
    return None


def _rollout_alerts(client) -> list[str]:
    """What the rollout-regression rule says about the stored traffic (evaluated at its last call)."""
    from streams.alerting.evaluate import evaluate
    from streams.alerting.rules import AlertRules

    newest = client.query("SELECT toUnixTimestamp64Milli(max(timestamp)) FROM llm_calls").result_rows[0][0]
    rule = AlertRules.parse(ROLLOUT_RULE, source="demo rollout rule").rules[0]
    return [f"{'[red]FIRING[/]' if o.firing else '[green]ok[/]'} {escape(o.summary)}"
            for o in evaluate(rule, client, newest / 1000.0 + 1.0)]


def _print_summary(settings, stats, dead: Counter, duration: float) -> None:
    from streams.storage.clickhouse import connect

    client = connect(settings.dsn)
    try:
        result = client.query(SUMMARY_SQL)
        detections = client.query(DETECTIONS_SQL)
        drift = client.query(DRIFT_SQL)
        versions = client.query(PROMPT_VERSIONS_SQL)
        rollout = _rollout_alerts(client)
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
    console.print(_table("Detections (detections)", detections))
    console.print(_table("Drift alarms (drift_reports)", drift) if drift.result_rows else "[dim]no drift alarm[/]")
    console.print(_table("Prompt versions side by side (prompts/ registry, quality_scores)", versions))
    console.print("[bold]Rollout regression alert[/] (newest prompt version vs the one before, per app and model):")
    for line in rollout or ["[dim]no app ran two prompt versions[/]"]:
        console.print("  " + line)
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


def _table(title: str, result) -> Table:
    table = Table(title=title)
    for name in result.column_names:
        table.add_column(name)
    for row in result.result_rows:
        table.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    return table


def _fail(message: str) -> int:
    console.print(f"[red]✗ {escape(message)}[/]", soft_wrap=True)
    return 1
