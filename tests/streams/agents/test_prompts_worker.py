"""Prompt versions end to end on the real broker and the real engine: ``llmwatch prompts publish``
-> the compacted topic -> the worker -> ``prompt_versions`` -> the dashboard panel; and a
rollback that reaches a running app through the topic, without a redeploy."""
from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Callable

from typer.testing import CliRunner

from dashboards.queries import expand, iter_panels, load_dashboards
from streams.cli import app
from streams.client.prompt_follow import PromptFollower
from streams.client.prompts import PromptClient
from streams.kafka.topics import ensure_topics
from streams.kafka.lag import wait_caught_up
from tests.streams.prompt_repo import GOOD, versions
from tests.streams.worker_harness import WorkerProcess, connect, unique_settings

runner = CliRunner()


def cli(*args: str) -> str:
    result = runner.invoke(app, ["prompts", *args])
    assert result.exit_code == 0, result.output
    return result.output


def eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def test_publish_store_and_a_rollback_reaching_a_running_app(kafka_bootstrap: str, repo: Path, tmp_path: Path) -> None:
    good, worse = versions()
    settings = unique_settings(kafka_bootstrap, tmp_path / "home", detectors="", prompts_topic=f"prompts-{tmp_path.name[-8:]}")
    ensure_topics(settings)
    target = ["--root", str(repo), "--kafka", kafka_bootstrap, "--topic", settings.prompts_topic]
    cli("label", "support", "production", good, "--root", str(repo))
    # the app ships with the good version's file and labels, and no git history
    bundle = tmp_path / "bundle"
    shutil.copytree(repo, bundle)
    (bundle / "support.prompt").write_text(GOOD)
    cli("publish", *target)
    follower = PromptFollower(kafka_bootstrap, settings.prompts_topic).start()
    try:
        client = PromptClient(bundle, ttl_s=0, follow=follower)
        assert eventually(lambda: follower.target("support", "production") == good)
        assert client.load("support", key="u").version == good
        # a worse version rolls out: labelled and published from CI; the app follows in seconds
        cli("label", "support", "production", worse, "--root", str(repo))
        cli("publish", *target)
        assert eventually(lambda: client.load("support", key="u").version == worse), follower.labels
        rendered = client.load("support", key="u").render(question="Where is my order?")
        assert rendered[0].text == "Answer."  # a version the bundle never held, from the topic
        # one command rolls it back
        assert f"{worse} -> {good}" in cli("rollback", "support", "--root", str(repo))
        cli("publish", *target)
        assert eventually(lambda: client.load("support", key="u").version == good)
        assert client.load("support", key="u").stamp({"event_id": "e"})["prompt_version"] == good
    finally:
        follower.stop()

    worker = WorkerProcess(settings).start()
    try:
        group = f"{settings.consumer_group}-prompts"
        assert asyncio.run(wait_caught_up(kafka_bootstrap, [group], [settings.prompts_topic], 120,
                                          keep_waiting=worker.alive)), worker.log_text()[-3000:]
    finally:
        worker.stop()
    client = connect(settings.dsn)
    try:
        rows = client.query("SELECT version, labels, author, length(commit) FROM prompt_versions FINAL").result_rows
        assert sorted(rows) == sorted([(good, ["production"], "Ada", 40), (worse, [], "Ada", 40)])
        panel = next(p for d in load_dashboards() for p in iter_panels(d) if p.title == "Published prompt versions")
        now = dt.datetime.now(dt.timezone.utc)
        result = client.query(expand(panel.sql, now - dt.timedelta(hours=1), now, {"app": ["support-bot"]}, 60))
        shown = [dict(zip(result.column_names, r)) for r in result.result_rows]
        assert sorted((r["prompt"], r["version"], r["labels"]) for r in shown) == sorted(
            [("support", worse, ""), ("support", good, "production")])
    finally:
        client.close()
