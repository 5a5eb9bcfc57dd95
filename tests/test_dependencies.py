"""Every package the runtime code imports is declared, in the install that runs it.

A package that happens to be installed (because a test extra pulls it in) proves nothing on a
new machine: this reads the imports of ``streams/``, ``detectors/`` and ``dashboards/`` from
their source and checks each against pyproject's dependencies. The install smoke test
(``tests/test_install_smoke.py``) then proves the default install really runs.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PACKAGES = ("streams", "detectors", "dashboards")
LOCAL = {"streams", "detectors", "dashboards", "schemas", "bench", "tests"}

#: Imports that only an optional install runs, and the extra that declares them.
EXTRA_IMPORTS = {
    "sentence_transformers": "reference",  # detectors/embeddings/reference.py, LLMWATCH_EMBEDDER=sentence-transformers
}

#: Offline fitting scripts (``python -m detectors.training.injection``): their imports come from [train].
TRAINING = "detectors/training/"


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    default = {_name(r) for r in project["dependencies"]}
    extras = {extra: {_name(r) for r in reqs} for extra, reqs in project["optional-dependencies"].items()}
    return default, extras


def runtime_imports() -> dict[str, set[str]]:
    """Top-level module imported -> files importing it (functions' lazy imports included)."""
    found: dict[str, set[str]] = {}
    for package in RUNTIME_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in LOCAL:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_runtime_import_is_declared_where_it_runs() -> None:
    default, extras = _declared()
    distributions = md.packages_distributions()
    problems = []
    for module, files in sorted(runtime_imports().items()):
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if not dists:
            problems.append(f"{module} (imported by {sorted(files)}) is not installed in the test environment")
            continue
        extra = EXTRA_IMPORTS.get(module)
        if extra is None and all(f.startswith(TRAINING) for f in files):
            extra = "train"  # the fitting scripts run only from an install with the train extra
        wanted = extras[extra] if extra else default
        where = f"the [{extra}] extra" if extra else "[project] dependencies"
        if not dists & wanted:
            problems.append(f"{module} (distribution {sorted(dists)}, imported by {sorted(files)}) is missing from {where}")
    assert not problems, "undeclared runtime imports:\n" + "\n".join(problems)


def test_the_checker_sees_lazy_imports() -> None:
    # The reference backend imports sentence_transformers inside a function: a checker that only
    # read module-level imports would pass whatever pyproject said.
    assert "detectors/embeddings/reference.py" in runtime_imports()["sentence_transformers"]
    assert "onnxruntime" in runtime_imports()


def test_floors_hold_for_the_locked_versions() -> None:
    """Each declared requirement admits a version uv.lock holds for it (a floor above it would
    make the lock unsatisfiable; the lock is what CI and every install run). Read from the lock,
    not from what is installed: the mutation extra, say, is locked but not installed by the tests."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for reqs in project["optional-dependencies"].values():
        requirements += [Requirement(r) for r in reqs]
    locked: dict[str, list[str]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        locked.setdefault(canonicalize_name(package["name"]), []).append(package["version"])
    for req in requirements:
        versions = locked.get(canonicalize_name(req.name), [])
        assert versions, f"{req.name} is declared but not in uv.lock: run ./run.sh lock"
        assert any(req.specifier.contains(v, prereleases=True) for v in versions), (
            f"{req} admits none of the locked {req.name} versions {versions}")