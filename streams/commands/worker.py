"""``llmwatch worker``: run the Faust worker with settings from the environment."""
from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from streams.config import ROLES

ROLE_HELP = "; ".join(f"{name}: {what}" for name, what in ROLES.items())


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        loglevel: str = typer.Option("info", help="Faust log level."),
        role: Optional[str] = typer.Option(
            None, help="all | ingest | detect | store (default: LLMWATCH_ROLE, else all). " + ROLE_HELP
        ),
    ) -> None:
        """Run the stream worker until stopped: every agent (role all), or one role of a scaled-out deployment."""
        if role is not None:
            os.environ["LLMWATCH_ROLE"] = role
        raise typer.Exit(run_worker(loglevel))


def run_worker(loglevel: str = "info") -> int:
    """Check what the worker needs, then run the Faust worker in this process (blocks).

    Returns the exit status: 2 when a start-up check fails, 1 when the worker stopped on an error
    (a crashed agent or task), each with one line on stderr that names the root cause and the fix.
    """
    from streams.worker.preflight import StartupError, one_line, preflight

    try:
        settings = preflight()
    except StartupError as exc:
        print(one_line(exc), file=sys.stderr, flush=True)
        return 2
    from streams.app import create_app
    from streams.worker.shutdown import BoundedShutdownWorker

    app = create_app(settings)
    worker = BoundedShutdownWorker(app, loglevel=loglevel, quiet=True, shutdown_timeout_s=settings.shutdown_timeout_s)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (1 if exc.code else 0)
        reason = getattr(app, "_crash_reason", None)  # mode's Service records what crashed it
        if code and reason is not None:
            print(one_line(_root_cause(reason), "stopped"), file=sys.stderr, flush=True)
        return code
    except BaseException as exc:  # Faust re-raises what crashed the app, after its own traceback
        print(one_line(_root_cause(exc), "stopped"), file=sys.stderr, flush=True)
        return 1
    return 0


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception that names a fix, else the innermost one."""
    seen = exc
    while seen.__cause__ is not None and "fix:" not in str(seen).lower():
        seen = seen.__cause__
    return seen
