"""The ``llmwatch`` command line: one typer app; each command group lives in ``streams/commands``."""
from __future__ import annotations

import typer

from streams.commands import register_all

app = typer.Typer(no_args_is_help=True, add_completion=False, help="llmwatch: LLM call monitoring on Kafka + ClickHouse.")


@app.callback()
def _root() -> None:
    """llmwatch: LLM call monitoring on Kafka + ClickHouse."""


register_all(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
