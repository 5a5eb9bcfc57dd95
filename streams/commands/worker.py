"""``llmwatch worker``: run the Faust worker with settings from the environment."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(loglevel: str = typer.Option("info", help="Faust log level.")) -> None:
        """Run the stream worker (ingest and detection agents) until stopped."""
        run_worker(loglevel)


def run_worker(loglevel: str = "info") -> None:
    """Create the topics, then run the Faust worker in this process (blocks)."""
    import faust

    from streams.app import create_app
    from streams.config import Settings
    from streams.topics import ensure_topics

    settings = Settings.from_env()
    ensure_topics(settings)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
