"""``llmwatch prompts lint|list|show|log|diff|label|rollback|publish``: the prompt registry kept in git.

Prompts live in ``prompts/<name>.prompt`` (Dotprompt) beside ``prompts/labels.yaml``; see
:mod:`streams.client.prompt_registry`. ``label`` and ``rollback`` edit labels.yaml: commit it
(and let the app's CI ship it) for the change to reach running apps.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import time
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from streams.client.prompt_files import PromptError
from streams.client.prompt_lint import lint
from streams.client.prompt_registry import PromptRegistry, Target, labels_of
from streams.pipeline.prompt_messages import labels_message, version_message

prompts_app = typer.Typer(no_args_is_help=True, help="Prompt versions in git: lint, inspect, label, roll back.")
ROOT = typer.Option(Path("prompts"), "--root", help="the prompts folder")
out = Console()


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _split(spec: str) -> tuple[str, str | None, str | None]:
    """``NAME``, ``NAME@LABEL`` or ``NAME@VERSION`` (a version is hex)."""
    name, _, ref = spec.partition("@")
    if not ref:
        return name, None, None
    is_version = all(c in "0123456789abcdef" for c in ref) and len(ref) >= 6
    return name, (None if is_version else ref), (ref if is_version else None)


@prompts_app.command("lint")
def lint_command(root: Path = ROOT) -> None:
    """Check every prompt and labels.yaml; exit 1 listing each problem as file:line."""
    problems = lint(root)
    for problem in problems:
        out.print(problem, highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{len(PromptRegistry(root).names())} prompt(s) OK")


@prompts_app.command("list")
def list_command(root: Path = ROOT) -> None:
    """Each prompt with its current version and labels."""
    registry = PromptRegistry(root)
    table = Table("prompt", "version (working tree)", "model", "labels")
    labels = registry.labels()
    for name in registry.names():
        p = registry.current(name)
        shown = ", ".join(f"{label}={_show_target(t)}" for label, t in sorted(labels.get(name, {}).items()))
        table.add_row(name, p.version, p.model, shown)
    out.print(table)


@prompts_app.command("show")
def show_command(spec: str = typer.Argument(..., help="NAME, NAME@LABEL or NAME@VERSION"), root: Path = ROOT,
                 key: Optional[str] = typer.Option(None, help="the A/B key (user or session id)")) -> None:
    """Print a prompt's source at a label or version (default: the working tree)."""
    registry = PromptRegistry(root)
    name, label, version = _split(spec)
    try:
        p = (registry.version(name, version) if version else registry.resolve(name, label, key) if label
             else registry.current(name))
    except PromptError as exc:
        _fail(str(exc))
    out.print(f"# {p.name} {p.version}", highlight=False)
    out.print(p.normalised_source(), end="", highlight=False, markup=False)


@prompts_app.command("log")
def log_command(name: str, root: Path = ROOT) -> None:
    """Versions of NAME in git history, newest first: version, commit, author, date."""
    table = Table("version", "commit", "author", "date", "subject")
    for commit, p in PromptRegistry(root).history(name):
        table.add_row(p.version, commit.sha[:10], commit.author, commit.date, commit.subject)
    out.print(table)


@prompts_app.command("diff")
def diff_command(name: str, a: str, b: str, root: Path = ROOT) -> None:
    """Unified diff of two versions (hashes or labels) of NAME."""
    registry = PromptRegistry(root)
    try:
        left, right = (_ref(registry, name, ref) for ref in (a, b))
    except PromptError as exc:
        _fail(str(exc))
    lines = difflib.unified_diff(left.normalised_source().splitlines(True), right.normalised_source().splitlines(True),
                                 f"{name}@{left.version}", f"{name}@{right.version}")
    out.print("".join(lines), end="", highlight=False, markup=False)


@prompts_app.command("label")
def label_command(name: str, label: str, version: str, root: Path = ROOT) -> None:
    """Point LABEL of NAME at VERSION, or at a split like 'a1b2c3:90,d4e5f6:10'."""
    registry = PromptRegistry(root)
    try:
        target: Target = _target(version)
        for v in [target] if isinstance(target, str) else list(target):
            registry.version(name, v)  # must exist
        registry.set_label(name, label, _full(registry, name, target))
    except PromptError as exc:
        _fail(str(exc))
    out.print(f"{name}: {label} -> {_show_target(registry.labels()[name][label])} (commit prompts/labels.yaml to ship it)")


@prompts_app.command("rollback")
def rollback_command(name: str, label: str = typer.Option("production", help="the label to move back"),
                     root: Path = ROOT) -> None:
    """Move LABEL of NAME back to the version it pointed at before."""
    registry = PromptRegistry(root)
    try:
        before = registry.previous_target(name, label)
        now = registry.labels()[name][label]
        registry.set_label(name, label, before)
    except PromptError as exc:
        _fail(str(exc))
    out.print(f"{name}: {label} {_show_target(now)} -> {_show_target(before)} (commit prompts/labels.yaml to ship it)")


@prompts_app.command("publish")
def publish_command(root: Path = ROOT,
                    kafka: str = typer.Option("127.0.0.1:9092", envvar="LLMWATCH_KAFKA", help="bootstrap servers"),
                    topic: str = typer.Option("llm.prompts", envvar="LLMWATCH_PROMPTS_TOPIC", help="the compacted prompts topic")) -> None:
    """Write every version and each prompt's labels to the prompts topic (run in CI after a merge)."""
    problems = lint(root)
    if problems:
        for problem in problems:
            out.print(problem, highlight=False)
        _fail("fix the problems above before publishing (llmwatch prompts lint)")
    from streams.devtools.kafka_local import create_topics, run_sync

    messages = publish_messages(PromptRegistry(root), int(time.time() * 1000))
    try:
        create_topics(kafka, {topic: 1}, configs={topic: {"cleanup.policy": "compact"}})
        run_sync(_produce(kafka, topic, messages))
    except Exception as exc:
        _fail(f"cannot publish to {topic} at {kafka}: {exc} (is Kafka up? set --kafka or LLMWATCH_KAFKA)")
    versions = sum(1 for key, _ in messages if key.startswith(b"version:"))
    out.print(f"published {versions} version(s) of {len(PromptRegistry(root).names())} prompt(s) and their labels to {topic}")


def publish_messages(registry: PromptRegistry, now_ms: int) -> list[tuple[bytes, bytes]]:
    """The version and labels messages of every prompt under ``registry``."""
    labels = registry.labels()
    messages = []
    for name in registry.names():
        targets = labels.get(name, {})
        for prompt, commit in registry.versions(name):
            committed_ms = int(dt.datetime.fromisoformat(commit.date).timestamp() * 1000) if commit else now_ms
            messages.append(version_message(
                name, prompt.version, prompt.front, prompt.template, author=commit.author if commit else "",
                commit=commit.sha if commit else "", committed_at_ms=committed_ms, labels=labels_of(prompt.version, targets),
                now_ms=now_ms))
        messages.append(labels_message(name, targets, now_ms))
    return messages


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _ref(registry: PromptRegistry, name: str, ref: str):
    try:
        return registry.version(name, ref)
    except PromptError:
        return registry.resolve(name, ref)


def _target(text: str) -> Target:
    if "," not in text and ":" not in text:
        return text
    arms = {}
    for part in text.split(","):
        version, _, weight = part.partition(":")
        if not weight.strip().isdigit():
            raise PromptError(f"a split looks like a1b2c3:90,d4e5f6:10, got {text!r}")
        arms[version.strip()] = int(weight)
    return arms


def _full(registry: PromptRegistry, name: str, target: Target) -> Target:
    """Prefixes expanded to full versions, so labels.yaml never holds an ambiguous one."""
    if isinstance(target, str):
        return registry.version(name, target).version
    return {registry.version(name, v).version: w for v, w in target.items()}


def _show_target(target: Target) -> str:
    return target if isinstance(target, str) else yaml.safe_dump(target, default_flow_style=True).strip()


def register(app: typer.Typer) -> None:
    """Add the ``prompts`` command group to the ``llmwatch`` app."""
    app.add_typer(prompts_app, name="prompts")
