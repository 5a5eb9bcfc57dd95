"""``detectors/`` is pure: no Kafka, Faust, ClickHouse or ``streams`` imports, anywhere.

The check reads the source (``ast``) of every module under ``detectors/`` rather than importing
it, so a forbidden import inside a function, a ``try`` block or behind a flag is caught too.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import detectors

ROOT = Path(detectors.__file__).resolve().parent
FORBIDDEN = ("faust", "aiokafka", "kafka", "clickhouse_connect", "chdb", "mode", "streams")
SOURCES = sorted(ROOT.rglob("*.py"))


def forbidden_imports(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a forbidden top-level package in ``source``.

    Covers ``import x``, ``from x import y``, and ``importlib.import_module("x")`` /
    ``__import__("x")`` with a literal name. Relative imports stay inside ``detectors``.
    """
    found: list[tuple[int, str]] = []

    def check(line: int, module: str | None) -> None:
        if module and module.split(".")[0] in FORBIDDEN:
            found.append((line, module))

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                check(node.lineno, node.module)
        elif isinstance(node, ast.Call) and node.args:
            fn = node.func
            fname = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            arg = node.args[0]
            if fname in ("import_module", "__import__") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                check(node.lineno, arg.value)
    return found


def test_the_walk_sees_every_detector_package() -> None:
    rel = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    for expected in ("base.py", "injection/detector.py", "grounding/detector.py", "drift/detector.py",
                     "embeddings/__init__.py"):
        assert expected in rel


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_is_pure(path: Path) -> None:
    bad = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(f'{m} (line {n})' for n, m in bad)}"


@pytest.mark.parametrize("source,expected", [
    ("import faust", ["faust"]),
    ("import os, aiokafka.consumer as c", ["aiokafka.consumer"]),
    ("from kafka import KafkaProducer", ["kafka"]),
    ("def f():\n    from clickhouse_connect.driver import Client", ["clickhouse_connect.driver"]),
    ("try:\n    import chdb\nexcept ImportError:\n    pass", ["chdb"]),
    ("from mode import Service", ["mode"]),
    ("from streams.records import LLMCall", ["streams.records"]),
    ("import importlib\nimportlib.import_module('streams.app')", ["streams.app"]),
    ("__import__('faust')", ["faust"]),
    ("from . import streams\nfrom .mode import x\nimport modeling\nimport kafkaesque", []),
    ("from detectors.base import Event\nimport numpy", []),
])
def test_the_checker_itself(source: str, expected: list[str]) -> None:
    assert [m for _, m in forbidden_imports(source)] == expected


def test_importing_every_detector_loads_no_forbidden_package() -> None:
    """The transitive check: a third-party dependency must not drag them in either."""
    code = (
        "import importlib, pkgutil, sys, detectors\n"
        "for m in pkgutil.walk_packages(detectors.__path__, 'detectors.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
