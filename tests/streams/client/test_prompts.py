"""The prompt registry in git: versions, labels and A/B arms, the SDK's fallback, lint, the CLI."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import app
from streams.client.prompt_files import PromptError, PromptFile
from streams.client.prompt_lint import lint
from streams.client.prompt_registry import PromptRegistry, pick
from streams.client.prompts import LABEL_ATTRIBUTE, PromptClient
from tests.streams.prompt_repo import GOOD, git, versions

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def test_the_version_ignores_line_endings_key_order_and_yaml_style() -> None:
    crlf = GOOD.replace("\n", "\r\n")
    reordered = GOOD.replace("model: openai/gpt-4o-mini\nconfig: {temperature: 0.2}\n",
                             "config:\n  temperature: 0.2\nmodel: openai/gpt-4o-mini\n")
    assert {PromptFile.parse("support", s).version for s in (GOOD, crlf, reordered, GOOD + "\n\n")} == {versions()[0]}
    assert versions()[0] != versions()[1]  # a changed template is a new version
    assert PromptFile.parse("support", GOOD.replace("0.2", "0.3")).version != versions()[0]  # so is a changed config


def test_ab_arms_follow_the_weights_and_stay_with_their_key() -> None:
    split = {"a" * 10: 90, "b" * 10: 10}
    arms = Counter(pick(split, f"user-{i}") for i in range(10_000))
    assert 0.08 < arms["b" * 10] / 10_000 < 0.12
    assert all(pick(split, f"user-{i}") == pick(split, f"user-{i}") for i in range(100))
    assert pick("abc", None) == "abc"


def test_history_versions_labels_and_rollback(repo: Path) -> None:
    good, worse = versions()
    registry = PromptRegistry(repo)
    assert [p.version for _, p in registry.history("support")] == [worse, good]
    assert registry.version("support", good[:7]).template.startswith('{{role "system"}}\nYou are a helpful')
    registry.set_label("support", "production", good)
    git(repo.parent, "add", "-A")
    git(repo.parent, "commit", "-q", "-m", "production: good")
    registry.set_label("support", "production", worse)  # the rollout
    git(repo.parent, "commit", "-q", "-am", "production: worse")
    client = PromptClient(repo, ttl_s=0)
    assert client.load("support", key="u1").version == worse
    result = runner.invoke(app, ["prompts", "rollback", "support", "--root", str(repo)])
    assert result.exit_code == 0, result.output
    assert f"{worse} -> {good}" in result.output
    loaded = client.load("support", key="u1")
    event = loaded.stamp({"event_id": "e1"})
    assert (event["prompt_name"], event["prompt_version"], event["attributes"][LABEL_ATTRIBUTE]) == ("support", good, "production")


def test_a_split_label_gives_each_key_its_arm(repo: Path) -> None:
    good, worse = versions()
    result = runner.invoke(app, ["prompts", "label", "support", "canary", f"{good[:7]}:50,{worse[:7]}:50", "--root", str(repo)])
    assert result.exit_code == 0, result.output
    client = PromptClient(repo)
    seen = Counter(client.load("support", "canary", key=f"k{i}").version for i in range(400))
    assert set(seen) == {good, worse} and min(seen.values()) > 150


def test_the_sdk_serves_the_last_good_version_when_the_registry_breaks(repo: Path) -> None:
    PromptRegistry(repo).set_label("support", "production", versions()[1])
    client = PromptClient(repo, ttl_s=0)
    first = client.load("support")
    (repo / "labels.yaml").write_text("support: [not, a, mapping\n")  # a broken deploy
    (repo / "support.prompt").unlink()
    again = client.load("support")
    assert again.version == first.version and client.fallbacks["support"] == 1
    with pytest.raises(PromptError, match="never loaded before"):
        client.load("support", label="staging")


def test_render_names_a_missing_variable() -> None:
    prompt = PromptFile.parse("support", GOOD)
    assert [m.role for m in prompt.render({"question": "Where is my order?"})] == ["system", "user"]
    with pytest.raises(PromptError, match="needs variable\\(s\\) question"):
        prompt.render({})


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("yaml", "---\nmodel: [unclosed\n---\nhi\n", "bad.prompt:2: bad.prompt line 2: not valid YAML"),
    ("shape", "---\nmodel: 3\n---\nhi\n", "bad.prompt:2: front matter 'model' must be a string"),
    ("syntax", "---\nmodel: m\n---\n{{#if x}} never closed\n", "bad.prompt:4: template does not compile"),
    ("undeclared", "---\ninput: {schema: {a: string}}\n---\n{{a}}\n{{b}}\n", "bad.prompt:5: variable 'b' is used but not declared"),
    ("unused", "---\ninput: {schema: {a: string, c: string}}\n---\n{{a}}\n", "bad.prompt:2: input 'c' is declared but the template never uses it"),
])
def test_lint_names_file_and_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    (tmp_path / "bad.prompt").write_text(text)
    problems = lint(tmp_path)
    assert len(problems) == 1 and expected in problems[0], problems


def test_lint_finds_labels_that_point_nowhere(repo: Path) -> None:
    (repo / "labels.yaml").write_text("support:\n  production: 0123456789\nghost:\n  production: abcdef0123\n")
    problems = lint(repo)
    assert any("labels.yaml:2: label 'production' of 'support' points at version '0123456789'" in p for p in problems), problems
    assert any("labels.yaml:3: labels for unknown prompt 'ghost'" in p for p in problems), problems
    result = runner.invoke(app, ["prompts", "lint", "--root", str(repo)])
    assert result.exit_code == 1 and "ghost" in result.output


def test_show_log_and_diff(repo: Path) -> None:
    good, worse = versions()
    shown = runner.invoke(app, ["prompts", "show", f"support@{good[:8]}", "--root", str(repo)])
    assert shown.exit_code == 0 and "You are a helpful support agent." in shown.output
    log = runner.invoke(app, ["prompts", "log", "support", "--root", str(repo)])
    assert log.exit_code == 0 and good in log.output and worse in log.output and "Ada" in log.output
    diff = runner.invoke(app, ["prompts", "diff", "support", good, worse, "--root", str(repo)])
    assert "-You are a helpful support agent." in diff.output and "+Answer." in diff.output
    missing = runner.invoke(app, ["prompts", "show", "support@nolabel", "--root", str(repo)])
    assert missing.exit_code == 1 and "has no label 'nolabel'" in " ".join(missing.output.split())


def test_the_repositorys_own_prompts_lint_clean() -> None:
    assert lint(ROOT / "prompts") == []


def test_published_messages_become_rows_and_bad_ones_dead_letters(repo: Path) -> None:
    from streams.commands.prompts import publish_messages
    from streams.pipeline.ingest import RawMessage
    from streams.pipeline.prompt_messages import prompt_version_rows

    PromptRegistry(repo).set_label("support", "production", versions()[0])
    messages = publish_messages(PromptRegistry(repo), now_ms=1_764_664_000_000)
    assert [k for k, _ in messages] == [f"version:support:{v}".encode() for v in versions()] + [b"labels:support"]
    raw = [RawMessage(k, v, 0, i) for i, (k, v) in enumerate(messages)] + [RawMessage(b"x", b"{oops", 0, 9),
                                                                            RawMessage(b"labels:gone", None, 0, 10)]
    batch = prompt_version_rows(raw, "llm.prompts")
    assert [(r[0], r[1], r[9]) for r in batch.rows] == [("support", versions()[0], ["production"]), ("support", versions()[1], [])]
    assert [(d.reason, d.offset) for d in batch.dead_letters] == [("bad_prompt_message", 9)]


def test_a_follower_skips_what_it_cannot_read_and_rebuilds_versions_from_messages(repo: Path) -> None:
    from streams.client.prompt_follow import PromptFollower
    from streams.commands.prompts import publish_messages

    follower = PromptFollower("127.0.0.1:1", "unused")
    follower.apply(b"not json")
    follower.apply(b'{"type": "labels"}')
    for _, value in publish_messages(PromptRegistry(repo), now_ms=0):
        follower.apply(value)
    good, worse = versions()
    assert follower.version("support", good[:6]).version == good and follower.version("support", worse).version == worse
    assert follower.seen == 3 and follower.labels == {"support": {}}


def test_the_label_travels_in_schema_v3_and_is_stored_in_attributes() -> None:
    from streams.pipeline.codec import EventCodec
    from streams.storage.rows import LLM_CALL_COLUMNS, llm_call_row

    codec = EventCodec()
    prompt = PromptClient(Path(__file__).resolve().parents[3] / "prompts").load("docs_qa", label="staging")
    event = prompt.stamp({"event_id": "e1", "timestamp_ms": 1_700_000_000_000, "service_name": "rag-search",
                          "request_model": "m", "input_messages": [{"role": "user", "content": "hi"}]})
    decoded = codec.decode(codec.encode_confluent(event))
    assert decoded.schema_id == codec.latest_id == 3
    assert (decoded.record["prompt_name"], decoded.record["prompt_label"]) == ("docs_qa", "staging")
    # an app that sets the field but not the attribute: the row's attributes still carry the label
    record = {**decoded.record, "attributes": {}}
    row = llm_call_row(record, decoded.schema_id, "llm.calls", 0, 0)
    attributes = row[[name for name, _ in LLM_CALL_COLUMNS].index("attributes")]
    assert dict(attributes)[LABEL_ATTRIBUTE] == "staging"
    # written with v2 (no such field): read as "" and nothing added
    old = codec.decode(codec.encode_confluent({k: v for k, v in event.items() if k != "prompt_label"}, schema_id=2))
    assert old.record["prompt_label"] == ""
