"""CLI command modules. Each module exposes ``register(app)``; they are imported lazily-light."""
from __future__ import annotations

import importlib

import typer

MODULES = ("eval", "dev", "demo", "worker", "generate", "dashboards", "report", "replay", "prompts")


def register_all(app: typer.Typer) -> None:
    for name in MODULES:
        try:
            module = importlib.import_module(f"streams.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"streams.commands.{name}":
                continue  # command not built yet
            raise
        module.register(app)
