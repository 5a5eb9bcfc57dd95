"""``llmwatch report``: run every dashboard panel on ClickHouse and write one self-contained HTML file."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer


def _redact(dsn: str) -> str:
    """The DSN without its password (it is printed in the report)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", dsn)


def _parse_vars(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r}: use NAME=VALUE[,VALUE...]", param_hint="--var")
        out[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return out


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
        since: Optional[str] = typer.Option(None, help="Range ending now (or at --to): 30m, 24h, 7d. Default 24h."),
        start: Optional[str] = typer.Option(None, "--from", help="Range start, ISO-8601 (UTC unless a zone is given)."),
        end: Optional[str] = typer.Option(None, "--to", help="Range end, ISO-8601; default now."),
        dsn: Optional[str] = typer.Option(None, help="ClickHouse DSN (default: $LLMWATCH_CLICKHOUSE_DSN or embedded)."),
        dashboard: list[str] = typer.Option([], "--dashboard", "-d", help="Only these dashboard uids (repeatable)."),
        var: list[str] = typer.Option([], "--var", help="Set a dashboard variable: NAME=V1,V2 (repeatable)."),
    ) -> None:
        """An HTML report of every dashboard for a time range: charts, numbers and tables, no Grafana needed."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from dashboards import queries
        from streams.grafana import report as rp
        from streams.storage.clickhouse import ClickHouseUnavailable, connect
        from streams.config import Settings

        err = Console(stderr=True)
        try:
            tr = rp.time_range(since, start, end)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        variables = _parse_vars(var)
        boards = [d for d in queries.load_dashboards() if not dashboard or d["uid"] in dashboard]
        if not boards:
            err.print(f"[red]error:[/] no dashboards match {dashboard}; known: "
                      f"{', '.join(d['uid'] for d in queries.load_dashboards()) or '(none in dashboards/)'}")
            raise typer.Exit(1)
        dsn = dsn or Settings.from_env().dsn
        try:
            client = connect(dsn)
        except ClickHouseUnavailable as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None

        total = sum(1 for d in boards for _ in queries.iter_panels(d))
        results = []
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("panels", total=total)
            query = rp.clickhouse_query(client)
            for board in boards:
                progress.update(task, description=f"[bold]{board.get('title', board['uid'])}")

                def done(r: rp.PanelResult) -> None:
                    mark = "[red]✗[/]" if r.error else "[green]✓[/]"
                    progress.console.print(f"  {mark} {r.panel.title} [dim]({len(r.rows)} rows, "
                                           f"{r.elapsed_s * 1000:.0f} ms)[/]", highlight=False)
                    progress.advance(task)

                results.append(rp.run_dashboard(board, tr, query, variables, on_panel=done))
        client.close()

        out.write_text(rp.render_html(results, tr, source=_redact(dsn)), encoding="utf-8")
        failed = [(d.title, p.panel.title, p.error) for d in results for p in d.panels if p.error]
        for board_title, title, error in failed:
            err.print(f"[red]failed:[/] {board_title} / {title}: {error}", highlight=False)
        err.print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {total} panels, {len(failed)} failed)")
        if failed:
            raise typer.Exit(1)
