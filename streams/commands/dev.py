"""``llmwatch dev up|down|status``: a local single-node Kafka broker for development."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from streams.devtools import kafka_local

console = Console()

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Broker data directory [default: $LLMWATCH_HOME/kafka or ./var/kafka]."),
]


def _describe(broker: kafka_local.DevBroker) -> None:
    console.print(f"  bootstrap  [bold]{broker.bootstrap}[/]")
    console.print(f"  pid        {broker.pid}   Kafka {broker.version}   data {broker.data_dir}")
    console.print(f"  log        {Path(broker.data_dir) / 'kafka.log'}")
    console.print(f"Point llmwatch at it:  [bold]export LLMWATCH_KAFKA={broker.bootstrap}[/]")


def up(
    data_dir: DataDir = None,
    port: Annotated[Optional[int], typer.Option(help="Broker port [default: 9092 if free, else any free port].")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker to become ready.")] = 90,
) -> None:
    """Start a Kafka broker (KRaft, single node) in the background."""
    t0 = time.monotonic()
    try:
        kafka_local.ensure_kafka_jars()  # has its own spinner; rich allows one live display at a time
        with console.status("Starting Kafka broker..."):
            broker = kafka_local.dev_up(data_dir, port=port, timeout=timeout)
    except kafka_local.KafkaSetupError as exc:
        console.print(f"[red]Kafka failed to start:[/] {exc}")
        raise typer.Exit(1) from exc
    if broker.already_running:
        console.print("[yellow]Kafka is already running[/]")
    else:
        if port is None and broker.port != kafka_local.DEFAULT_DEV_PORT:
            console.print(f"[yellow]port {kafka_local.DEFAULT_DEV_PORT} is busy, using {broker.port}[/]")
        console.print(f"[green]Kafka is up[/] in {time.monotonic() - t0:.1f}s")
    _describe(broker)


def down(data_dir: DataDir = None) -> None:
    """Stop the background Kafka broker."""
    with console.status("Stopping Kafka broker..."):
        broker = kafka_local.dev_down(data_dir)
    if broker is None:
        console.print("Kafka was not running")
    else:
        console.print(f"[green]Kafka stopped[/] (pid {broker.pid}, port {broker.port})")


def status(data_dir: DataDir = None) -> None:
    """Show whether the background Kafka broker runs; exit code 1 if it does not."""
    broker = kafka_local.dev_status(data_dir)
    if broker is None:
        console.print("Kafka is [red]not running[/]  (start it with: llmwatch dev up)")
        raise typer.Exit(1)
    console.print(f"Kafka is [green]running[/] (up {time.time() - broker.started_at:.0f}s)")
    _describe(broker)


def register(app: typer.Typer) -> None:
    """Add the ``dev`` command group to the root CLI."""
    dev = typer.Typer(no_args_is_help=True, help="Local development services (a Kafka broker).")
    dev.command()(up)
    dev.command()(down)
    dev.command()(status)
    app.add_typer(dev, name="dev")
