"""``llmwatch generate``: produce seeded, realistic LLM-call traffic (with planted problems) to Kafka."""
from __future__ import annotations

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def generate(
        rate: float = typer.Option(200.0, min=0.001, help="Messages per second."),
        duration: float = typer.Option(60.0, min=0.0, help="Seconds to run; 0 = until stopped (or --count)."),
        count: Optional[int] = typer.Option(None, min=1, help="Stop after this many messages (overrides --duration)."),
        malformed: float = typer.Option(0.05, min=0.0, max=1.0, help="Share of malformed messages."),
        json_share: float = typer.Option(0.2, "--json", min=0.0, max=1.0, help="Share of valid messages sent as JSON."),
        seed: int = typer.Option(7, help="Random seed: the same seed gives the same traffic."),
        drift_after: int = typer.Option(3000, min=0, help="Events before the drift phase starts; 0 = no drift."),
        bootstrap: Optional[str] = typer.Option(None, help="Kafka bootstrap servers (default: $LLMWATCH_KAFKA)."),
        topic: Optional[str] = typer.Option(None, help="Topic (default: $LLMWATCH_CALLS_TOPIC)."),
        progress: bool = typer.Option(True, help="Show a progress bar."),
    ) -> None:
        """Produce LLM-call events (Avro v1/v2 and JSON, some malformed) at a steady rate."""
        import asyncio

        from rich.console import Console

        from streams.config import Settings
        from streams.devtools.generator import Generator

        settings = Settings.from_env()
        gen = Generator(seed=seed, rate=rate, drift_after=drift_after or None)
        stats = asyncio.run(gen.run(
            bootstrap or settings.kafka_bootstrap, topic or settings.calls_topic,
            rate=rate, duration_s=None if count or not duration else duration, count=count,
            malformed_ratio=malformed, json_ratio=json_share, progress=progress,
            partitions=settings.topic_partitions,
        ))
        Console(stderr=True).print(
            f"produced {stats.produced} messages in {stats.elapsed_s:.1f}s ({stats.rate:,.0f}/s); "
            f"acked {stats.delivered}, failed {stats.failed}; planted {dict(stats.by_planted)}"
        )
        if stats.failed:
            raise typer.Exit(1)
