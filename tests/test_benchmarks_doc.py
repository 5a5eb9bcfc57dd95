"""BENCHMARKS.md agrees with the results files the benchmarks write, and the README with the suite.

Each section of BENCHMARKS.md summarises one file under ``bench/results/`` (the first one it
links, else the one its ``bench/bench_NAME.py`` writes). Every number in its tables, apart from
the first column (labels) and target columns, must be in that file, allowing for rounding: a
summary may round 0.806 to 0.81, never print 0.82.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(%?)")


def _numbers(text: str) -> list[tuple[str, bool]]:
    return [(m.group(1).replace(",", ""), m.group(2) == "%") for m in NUMBER.finditer(text)]


def _matches(shown: str, percent: bool, source: set[float]) -> bool:
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    value = float(shown)
    candidates = {value / 100} if percent else set()
    candidates.add(value)
    tolerance = 0.5 * 10 ** -decimals + 1e-9
    for c in candidates:
        scale_tol = tolerance / 100 if (percent and c != value) else tolerance
        if any(abs(v - c) <= scale_tol for v in source):
            return True
    return False


def _sections() -> list[tuple[str, Path | None, str]]:
    text = (ROOT / "BENCHMARKS.md").read_text()
    out = []
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        title = block.splitlines()[0]
        link = re.search(r"bench/results/(\w+)\.md", block)
        script = re.search(r"bench/bench_(\w+)\.py", title)
        name = link.group(1) if link else script.group(1) if script else None
        out.append((title, ROOT / "bench" / "results" / f"{name}.md" if name else None, block))
    return out


def _table_cells(block: str, default: Path | None) -> list[tuple[str, Path | None]]:
    """Cells of measurement columns (not the first, labels; not targets), each with the results
    file it summarises: the row's own link, "same file" as the row above, else the section's."""
    cells = []
    header: list[str] = []
    row_source = default
    for line in block.splitlines():
        if not line.startswith("|"):
            header = []
            continue
        row = [c.strip() for c in line.strip().strip("|").split("|")]
        if set("".join(row)) <= set("-: "):
            continue
        if not header:
            header, row_source = row, default
            continue
        link = re.search(r"bench/results/(\w+)\.md", line)
        if link:
            row_source = ROOT / "bench" / "results" / f"{link.group(1)}.md"
        for name, cell in zip(header[1:], row[1:]):
            if "target" in name.lower() or cell.startswith(("≥", "≤", "<", ">")) or "details" in name.lower():
                continue
            cells.append((cell, row_source))
    return cells


SECTIONS = [s for s in _sections() if s[1] is not None and _table_cells(s[2], s[1])]


def _source_numbers(path: Path) -> set[float]:
    text = path.read_text()
    return {float(n) for n, _ in _numbers(text)} | {float(n) / 100 for n, p in _numbers(text) if p}


@pytest.mark.parametrize("title,results,block", SECTIONS, ids=[s[0].split(" (")[0] for s in SECTIONS])
def test_summary_tables_match_their_results_file(title: str, results: Path, block: str) -> None:
    wrong = []
    for cell, source in _table_cells(block, results):
        assert source is not None and source.is_file(), f"{title}: {source} does not exist"
        numbers = _source_numbers(source)
        wrong += [f"{n}{'%' if p else ''} in '{cell}' ({source.name})" for n, p in _numbers(cell) if not _matches(n, p, numbers)]
    assert not wrong, f"BENCHMARKS.md '{title}' shows numbers that are not in its results files: {wrong}"


def test_model_card_matches_the_injection_results() -> None:
    card = (ROOT / "detectors" / "data" / "INJECTION_MODEL_CARD.md").read_text()
    section = card.split("## Out-of-sample accuracy", 1)[1].split("\n## ", 1)[0]
    numbers = _source_numbers(ROOT / "bench" / "results" / "injection.md")
    headline = section.split("Leave-one-source-out", 1)[0]
    cells = [c for c, _ in _table_cells(section, None)] + [headline.split("rows):", 1)[1]]
    wrong = [f"{n} in '{c.strip()}'" for c in cells for n, p in _numbers(c) if not _matches(n, p, numbers)]
    assert not wrong, f"INJECTION_MODEL_CARD.md quotes numbers that are not in bench/results/injection.md: {wrong}"


def test_the_checker_catches_a_wrong_rounding() -> None:
    source = {0.806, 0.009}
    assert _matches("0.81", False, source) and _matches("0.806", False, source)
    assert not _matches("0.82", False, source)
    assert _matches("0.9", True, source) and not _matches("1.5", True, source)


def test_readme_states_the_collected_test_count() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    collected = re.search(r"^(\d+) tests? collected", done.stdout, flags=re.M)
    assert collected, done.stdout[-2000:]
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"runs everything: ([\d,]+) tests", readme)
    assert stated, "README's Development section no longer states the test count"
    assert int(stated.group(1).replace(",", "")) == int(collected.group(1))
