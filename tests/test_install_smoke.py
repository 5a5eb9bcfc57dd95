"""The default install, fresh, runs the product: what `./run.sh demo` installs and nothing more.

A new virtualenv is built from uv.lock with exactly the demo's extras (no test, no reference:
no torch, no pytest), from the package registry's cache but never from the project's `.venv`,
and with the project installed as a wheel (so missing package data shows too). Then, in that
virtualenv and outside the checkout: the embedding graph is built from scratch, `llmwatch eval
injection` runs on 20 dev rows, and a worker answers `/healthz` 200 with every detector loaded.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_EXTRAS = ("embedded",)  # keep in step with run.sh's `demo)` branch (test_run_sh_demo_extras)
ABSENT = ("torch", "sentence_transformers", "pytest", "sklearn")  # test/reference extras only
EVAL_DIR = Path(os.environ.get("LLMWATCH_EVAL_DIR") or ROOT.parent / "shared" / "eval")


def _uv() -> str:
    uv = os.environ.get("LLMWATCH_UV") or shutil.which("uv")
    assert uv, "uv not found: run the tests with ./run.sh test (it installs uv) or set LLMWATCH_UV"
    return str(Path(uv).resolve()) if os.sep in uv else uv  # the commands run in other folders


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _uv_run(project: Path, venv: Path, *args: str) -> None:
    """``uv ARGS`` for ``project`` with ``venv`` as its environment; fails the test on an error."""
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([_uv(), *args, "--quiet", "--python", sys.executable], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _sync_demo_install(project: Path, venv: Path) -> None:
    """Exactly what ``./run.sh demo`` installs, the project as a wheel."""
    _uv_run(project, venv, "sync", "--frozen", "--no-editable", *[a for e in DEMO_EXTRAS for a in ("--extra", e)])


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    _sync_demo_install(ROOT, venv)
    return venv


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMWATCH_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # A cache of its own: the ONNX graph is built from the model files here, not reused.
    env.update(LLMWATCH_CACHE=str(tmp / "cache"), HF_HUB_OFFLINE="1", **extra)
    return env


def test_run_sh_demo_extras() -> None:
    """The smoke test installs what the demo installs."""
    text = (ROOT / "run.sh").read_text()
    demo = text.split("  demo)", 1)[1].split(";;", 1)[0]
    assert demo.split("install", 1)[1].split("\n", 1)[0].split() == list(DEMO_EXTRAS)


def test_default_install_has_no_test_or_reference_packages(fresh_venv: Path, tmp_path: Path) -> None:
    probe = "import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in %r}))" % (ABSENT,)
    out = subprocess.run([fresh_venv / "bin" / "python", "-c", probe], cwd=tmp_path, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {m: False for m in ABSENT}


def test_default_install_builds_the_embedder_and_runs_eval(fresh_venv: Path, tmp_path: Path) -> None:
    build = subprocess.run(
        [fresh_venv / "bin" / "python", "-c",
         "from detectors.embeddings import default_embedder; import detectors; "
         "print(default_embedder().encode(['hello']).shape, detectors.__file__)"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    shape, where = build.stdout.split(") ")
    assert shape == "(1, 384" and str(fresh_venv) in where  # the installed wheel, not the checkout
    assert list((tmp_path / "cache").rglob("*.onnx")), "the graph was not built into the fresh cache"

    rows = [json.loads(line) for line in (EVAL_DIR / "injection_dev.jsonl").open()]
    sample = [r for r in rows if r["label"] == 0][:10] + [r for r in rows if r["label"] == 1][:10]
    data = tmp_path / "rows20.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sample))
    ev = subprocess.run([fresh_venv / "bin" / "llmwatch", "eval", "injection", str(data), "--json"],
                        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-3000:]
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    assert result["n"] == 20 and result["f1"] > 0.5, result


def test_default_install_runs_a_worker_with_every_detector(fresh_venv: Path, tmp_path: Path, kafka_bootstrap: str) -> None:
    port = _free_port()
    env = _env(
        tmp_path, LLMWATCH_KAFKA=kafka_bootstrap, LLMWATCH_HOME=str(tmp_path / "home"), LLMWATCH_WEB_PORT=str(port),
        LLMWATCH_CONSUMER_GROUP="smoke", LLMWATCH_CALLS_TOPIC="smoke.calls",
        LLMWATCH_DEAD_LETTER_TOPIC="smoke.calls.dlq", LLMWATCH_RESULTS_TOPIC="smoke.detections",
    )
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen([fresh_venv / "bin" / "llmwatch", "worker"], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        body, deadline = None, time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if r.status_code == 200:
                    body = r.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        text = (tmp_path / "worker.log").read_text(errors="replace")
        assert body is not None, f"no healthy worker (exit {proc.poll()}); log tail:\n{text[-3000:]}"
        assert body["status"] == "ok" and body["loading"] == []
        assert {"detect_injection", "detect_grounding", "detect_drift"} <= {a.rsplit(".", 1)[-1] for a in body["agents"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def lowest_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default install with every direct dependency at its declared floor (uv's
    ``lowest-direct`` resolution of a copy of the project)."""
    project = tmp_path_factory.mktemp("lowest") / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    for package in ("streams", "detectors", "schemas", "dashboards"):
        shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    _uv_run(project, project / ".venv", "lock", "--resolution", "lowest-direct")
    _sync_demo_install(project, project / ".venv")
    return project / ".venv"


def test_declared_floors_really_hold(lowest_venv: Path, tmp_path: Path) -> None:
    """pyproject's floors are versions the code works with, not wishes: the embedder builds,
    every runtime module imports and the injection eval runs at the lowest allowed versions."""
    probe = (
        "import importlib, pkgutil, streams, detectors, dashboards\n"
        "for pkg in (streams, detectors, dashboards):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not m.name.endswith(('__main__', 'embeddings.reference')):\n"
        "            importlib.import_module(m.name)\n"
        "from detectors.embeddings import default_embedder\n"
        "print(default_embedder().encode(['hello']).shape)\n"
    )
    done = subprocess.run([lowest_venv / "bin" / "python", "-c", probe], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "(1, 384)", done.stderr[-3000:]
