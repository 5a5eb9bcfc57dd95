"""Demo traffic from a prompts/ registry: a label move replayed mid-stream, a worse version that
the refusal classifier sees, and a rollback that new calls follow (real git, real registry)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from detectors.base import Event
from detectors.quality import RefusalDetector
from streams.client.prompt_registry import PromptRegistry
from streams.client.prompts import LABEL_ATTRIBUTE, PromptClient
from streams.commands.prompts import rollback_command
from streams.devtools.generator import Generator
from tests.streams.prompt_repo import git

REPO_PROMPTS = Path(__file__).resolve().parents[3] / "prompts"


def copy_registry(tmp_path: Path) -> tuple[Path, str, str]:
    """The repository's prompts in a new git repo: the old support_agent committed first, then the
    worse one, then production split between them (as the repository's history has it)."""
    real = PromptRegistry(REPO_PROMPTS)
    old = real.previous_target("support_agent", "production")
    new = real.current("support_agent").version
    assert isinstance(old, str) and old != new
    root = tmp_path / "prompts"
    root.mkdir()
    git(tmp_path, "init", "-q")
    for name in real.names():
        source = real.version(name, old).source if name == "support_agent" else real.current(name).source
        (root / f"{name}.prompt").write_text(source, encoding="utf-8")
    (root / "labels.yaml").write_text(
        "".join(f"{n}:\n  production: {old if n == 'support_agent' else real.current(n).version}\n" for n in real.names()),
        encoding="utf-8")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "prompts")
    (root / "support_agent.prompt").write_text(real.current("support_agent").source, encoding="utf-8")
    git(tmp_path, "commit", "-q", "-am", "shipping-only support agent")
    PromptRegistry(root).set_label("support_agent", "production", {old: 50, new: 50})
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "split production")
    return root, old, new


def support_calls(gen: Generator, n: int) -> list[dict]:
    return [e for e in gen.events(n) if e["service_name"] == "support-bot"]


def test_label_move_is_replayed_and_the_worse_version_refuses(tmp_path: Path) -> None:
    root, old, new = copy_registry(tmp_path)
    gen = Generator(seed=5, prompts=PromptClient(root, ttl_s=0), rollout_after=400, drift_after=None)
    before, after = support_calls(gen, 400), support_calls(gen, 1600)
    assert {e["prompt_version"] for e in before} == {old}
    arms = Counter(e["prompt_version"] for e in after)
    assert set(arms) == {old, new} and 0.35 < arms[new] / sum(arms.values()) < 0.65
    assert all(e["attributes"][LABEL_ATTRIBUTE] == "production" and e["prompt_name"] == "support_agent" for e in after)
    assert "shipping" in next(e for e in after if e["prompt_version"] == new)["system_instructions"]
    # the refusal classifier (not the generator's own bookkeeping) sees the worse version refuse more
    answered = [e for e in after if e["output_text"] and e["attributes"]["llmwatch.planted"] == ""]
    verdicts = RefusalDetector().detect_batch([Event(prompt="q", response=e["output_text"]) for e in answered])
    rate = {v: sum(d.flagged for e, d in zip(answered, verdicts) if e["prompt_version"] == v)
               / sum(1 for e in answered if e["prompt_version"] == v) for v in (old, new)}
    assert rate[new] > rate[old] + 0.2, rate


def test_after_rollback_new_calls_carry_the_old_version(tmp_path: Path) -> None:
    root, old, new = copy_registry(tmp_path)
    client = PromptClient(root, ttl_s=0)
    gen = Generator(seed=6, prompts=client, drift_after=None)
    assert {e["prompt_version"] for e in support_calls(gen, 600)} == {old, new}
    rollback_command("support_agent", "production", root=root)
    assert PromptRegistry(root).labels()["support_agent"]["production"] == old
    assert {e["prompt_version"] for e in support_calls(gen, 600)} == {old}


def test_without_a_registry_the_generator_is_unchanged() -> None:
    plain = [e["prompt_version"] for e in Generator(seed=9).events(200)]
    assert set(plain) <= {"v1", "v2", "v3"}
