"""A worker that cannot start says why in one line, within 10 s, and the demo stops with it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from detectors.embeddings.model_files import model_dir
from streams.worker.preflight import PREFIX

ROOT = Path(__file__).resolve().parents[3]
BOUND_S = 10.0


@pytest.fixture
def broken_model(tmp_path: Path) -> Path:
    """The real tokenizer and config beside a model.safetensors that is not one."""
    folder = tmp_path / "broken-model"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if (model_dir() / name).exists():
            shutil.copy(model_dir() / name, folder / name)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    return folder


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMWATCH_")}
    env.update(
        LLMWATCH_HOME=str(tmp_path / "home"), LLMWATCH_CACHE=str(tmp_path / "cache"),
        PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **settings,
    )
    return env


def _run_worker(tmp_path: Path, **settings: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "streams", "worker"], cwd=ROOT, env=_env(tmp_path, **settings),
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


def _the_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def test_broken_model_folder_stops_the_worker_fast(tmp_path: Path, broken_model: Path, kafka_bootstrap: str) -> None:
    done, elapsed = _run_worker(tmp_path, LLMWATCH_MODEL_DIR=str(broken_model), LLMWATCH_KAFKA=kafka_bootstrap)
    line = _the_line(done.stderr)
    assert done.returncode == 2 and elapsed < BOUND_S, (done.returncode, elapsed)
    assert "cannot start: the embedding model cannot be loaded" in line and "fix:" in line
    assert "Traceback" not in done.stderr  # one line, not Faust's restart loop


def test_missing_model_folder_names_the_missing_files(tmp_path: Path, kafka_bootstrap: str) -> None:
    done, elapsed = _run_worker(tmp_path, LLMWATCH_MODEL_DIR=str(tmp_path / "nowhere"), LLMWATCH_KAFKA=kafka_bootstrap)
    line = _the_line(done.stderr)
    assert done.returncode == 2 and elapsed < BOUND_S
    assert "model.safetensors" in line and "LLMWATCH_MODEL_DIR" in line


@pytest.mark.parametrize(
    "settings,expected",
    [
        ({"LLMWATCH_BATCH_SIZE": "lots"}, "LLMWATCH_BATCH_SIZE='lots' is not a valid int"),
        ({"LLMWATCH_DETECTORS": "injection,telepathy"}, "unknown detector(s) ['telepathy']"),
        ({"LLMWATCH_CLICKHOUSE_DSN": "http://default:x@127.0.0.1:1/default"}, "cannot open ClickHouse at http://"),
        ({"LLMWATCH_KAFKA": "127.0.0.1:1", "LLMWATCH_DETECTORS": ""}, "cannot reach Kafka at 127.0.0.1:1"),
    ],
    ids=["bad-number", "unknown-detector", "clickhouse-unreachable", "kafka-unreachable"],
)
def test_bad_configuration_stops_the_worker_fast(tmp_path: Path, settings: dict[str, str], expected: str) -> None:
    done, elapsed = _run_worker(tmp_path, **settings)
    line = _the_line(done.stderr)
    assert done.returncode == 2 and elapsed < BOUND_S, (done.returncode, elapsed, line)
    assert expected in line and "fix" in line.lower(), line


def test_embedded_folder_held_by_another_process(tmp_path: Path, kafka_bootstrap: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from streams.storage.clickhouse import connect; "
         "c = connect(sys.argv[1]); c.query('SELECT 1'); print('held', flush=True); time.sleep(60)",
         f"chdb://{tmp_path / 'home' / 'clickhouse'}"],
        cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done, elapsed = _run_worker(tmp_path, LLMWATCH_KAFKA=kafka_bootstrap, LLMWATCH_DETECTORS="")
    finally:
        holder.kill()
        holder.wait()
    line = _the_line(done.stderr)
    assert done.returncode == 2 and elapsed < BOUND_S
    assert "another process (a running worker?) holds the embedded data folder" in line


def test_demo_stops_within_seconds_of_the_worker_dying(tmp_path: Path, broken_model: Path) -> None:
    home = tmp_path / "demo"
    env = _env(tmp_path, LLMWATCH_MODEL_DIR=str(broken_model), COLUMNS="400")
    done = subprocess.run([sys.executable, "-m", "streams", "demo", "--home", str(home), "--duration", "30"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    ended = time.time()
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    worker_died = (home / "worker-0.log").stat().st_mtime  # its last line is written as it exits
    assert ended - worker_died < BOUND_S, ended - worker_died
    out = " ".join(done.stdout.split())
    assert f"✗ {PREFIX} cannot start: the embedding model cannot be loaded" in out and "fix:" in out
    assert "Generating traffic" not in out  # it waited for a ready worker before sending any
