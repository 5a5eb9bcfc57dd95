"""``llmwatch dashboards push``: folder, ClickHouse datasource, dashboards and alerting into a running Grafana."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

ACTION_STYLE = {"created": "green", "updated": "yellow", "unchanged": "dim", "skipped": "magenta"}


def register(app: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="Grafana dashboards, datasource and alerting.")
    app.add_typer(group, name="dashboards")

    @group.command()
    def push(
        url: str = typer.Option("http://localhost:3000", envvar="GRAFANA_URL", help="Grafana base URL."),
        token: Optional[str] = typer.Option(None, envvar="GRAFANA_TOKEN", help="Service-account token (Bearer)."),
        user: Optional[str] = typer.Option(None, envvar="GRAFANA_USER", help="Basic-auth user (instead of a token)."),
        password: Optional[str] = typer.Option(None, envvar="GRAFANA_PASSWORD", help="Basic-auth password."),
        folder_uid: str = typer.Option("llmwatch", help="Uid of the Grafana folder to push into."),
        folder_title: str = typer.Option("llmwatch", help="Title of that folder."),
        clickhouse_host: str = typer.Option("clickhouse", envvar="LLMWATCH_CLICKHOUSE_HOST",
                                            help="ClickHouse host as Grafana sees it."),
        clickhouse_port: int = typer.Option(8123, envvar="LLMWATCH_CLICKHOUSE_PORT", help="ClickHouse HTTP port."),
        clickhouse_protocol: str = typer.Option("http", help="http or native."),
        clickhouse_user: str = typer.Option("default", envvar="LLMWATCH_CLICKHOUSE_USER", help="ClickHouse user."),
        clickhouse_password: str = typer.Option("", envvar="LLMWATCH_CLICKHOUSE_PASSWORD",
                                                help="ClickHouse password (write-only in Grafana)."),
        clickhouse_database: str = typer.Option("default", help="Default ClickHouse database."),
        webhook_url: Optional[str] = typer.Option(None, envvar="LLMWATCH_ALERT_WEBHOOK_URL",
                                                  help="URL the llmwatch-webhook contact point posts alerts to."),
        source: Path = typer.Option(None, help="Folder with the dashboard JSON and provisioning/ (default: the repo's)."),
    ) -> None:
        """Push everything idempotently: unchanged objects are not written; prints what changed."""
        import os

        from rich.console import Console
        from rich.table import Table

        from streams.grafana import push as gp

        console = Console()
        try:
            bundle = gp.load_bundle(
                gp.datasource_env(clickhouse_host, clickhouse_port, clickhouse_user, clickhouse_password),
                {"protocol": clickhouse_protocol, "defaultDatabase": clickhouse_database},
                folder_uid=folder_uid, folder_title=folder_title, directory=source or gp.DASHBOARDS_DIR,
                alert_env={**os.environ, **({"LLMWATCH_ALERT_WEBHOOK_URL": webhook_url} if webhook_url else {})},
            )
            api = gp.open_api(url, token=token, user=user, password=password)
            with gp.grafana_errors(url), console.status(f"pushing to {url}"):
                changes = gp.push(api, bundle)
        except (gp.PushError, gp.GrafanaException, OSError, ValueError) as exc:
            Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None

        table = Table(title=f"Grafana push to {url}")
        for column in ("kind", "name", "action", "detail"):
            table.add_column(column)
        for c in changes:
            style = ACTION_STYLE.get(c.action, "")
            table.add_row(c.kind, c.name, f"[{style}]{c.action}[/]", c.detail)
        console.print(table)
        counts = {a: sum(c.action == a for c in changes) for a in ACTION_STYLE}
        console.print(", ".join(f"{n} {a}" for a, n in counts.items() if n) or "nothing to push")
