"""``llmwatch eval``: the drift detector end to end on a synthetic file, JSON last line, bad input."""
from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

import detectors.embeddings
from streams.cli import app

runner = CliRunner()


class TopicEmbedder:
    """Fast stand-in for the sentence model: "sum…" prompts near one direction, others near another."""

    dim = 32

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            v = np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim)
            v[0 if t.startswith("sum") else 1] += 4.0
            out[i] = v / np.linalg.norm(v)
        return out


@pytest.fixture
def fast_embedder(monkeypatch):
    monkeypatch.setattr(detectors.embeddings, "default_embedder", lambda: TopicEmbedder())


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_eval_drift_reports_the_alarm_as_the_last_json_line(tmp_path, fast_embedder):
    rows = [{"id": str(i), "source": "syn", "prompt": f"write a poem about topic {i}", "phase": 0} for i in range(500)]
    rows += [{"id": str(500 + i), "source": "syn", "prompt": f"sum {i} and {i + 3}", "phase": 1} for i in range(200)]
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = runner.invoke(app, ["eval", "drift", str(path), "--json"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert set(payload) == {"alarm", "first_alarm_index", "change_index", "delay", "false_alarms", "events_per_s"}
    assert payload["alarm"] is True and payload["change_index"] == 500 and payload["false_alarms"] == 0
    assert 0 <= payload["delay"] <= 100 and payload["first_alarm_index"] == 500 + payload["delay"]
    assert "first alarm index" in result.stdout


def test_eval_without_json_prints_tables_only(tmp_path, fast_embedder):
    path = tmp_path / "quiet.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"hello {i}", "phase": 0}) + "\n" for i in range(30)))
    result = runner.invoke(app, ["eval", "drift", str(path)])
    assert result.exit_code == 0, result.output
    assert "false alarms" in result.stdout and not result.stdout.strip().endswith("}")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        ('{"prompt": "a", "phase": 0}\nnot json\n', ":2: not valid JSON"),
        ('{"prompt": "a"}\n', ":1: missing key(s) phase"),
    ],
)
def test_bad_input_exits_2_naming_the_line(tmp_path, content, needle):
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["eval", "drift", str(path), "--json"])
    assert result.exit_code == 2
    assert needle in " ".join(result.output.split())


def test_unknown_task_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["eval", "toxicity", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2
