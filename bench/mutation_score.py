"""Mutation score of the modules ``[tool.mutmut]`` names, from the results of ``mutmut run``.

    ./run.sh mutation                 # runs mutmut, then this
    python bench/mutation_score.py    # just the summary of the last run (reads mutants/)

Writes ``bench/results/mutation.md``: per module, mutants killed, survived, not reached by the
selected tests, and timed out, then the score and the names of the survivors.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._machine import machine  # noqa: E402

# mutmut's exit codes (mutmut/__main__.py, status_by_exit_code): 1 and 3 the tests failed,
# 0 they passed, 33 and 5 no test covers the mutated function, 24/36/152/255/-24 timed out.
_STATUS = {1: "killed", 3: "killed", 0: "survived", 33: "no tests", 5: "no tests", 34: "skipped",
           36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", None: "not checked"}


def results(mutants: Path) -> dict[str, dict[str, int | None]]:
    """``module -> {mutant name: exit code}`` from mutmut's ``.meta`` files."""
    out: dict[str, dict[str, int | None]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        out[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return out


def summary(by_module: dict[str, dict[str, int | None]]) -> tuple[list[str], list[str]]:
    """Markdown table rows and the survivors' names."""
    rows = ["| module | mutants | killed | survived | no tests | timeout | score |", "|---|---|---|---|---|---|---|"]
    survivors: list[str] = []
    total: Counter = Counter()
    for module, codes in by_module.items():
        counts: Counter = Counter(_STATUS.get(code, "suspicious") for code in codes.values())
        total.update(counts)
        survivors += [name for name, code in codes.items() if _STATUS.get(code) == "survived"]
        rows.append(_row(module, len(codes), counts))
    rows.append(_row("**all**", sum(total.values()), total))
    return rows, survivors


def _row(name: str, n: int, c: Counter) -> str:
    caught = c["killed"] + c["timeout"]
    judged = caught + c["survived"] + c["no tests"]
    score = f"{caught / judged:.1%}" if judged else "–"
    return f"| {name} | {n} | {c['killed']} | {c['survived']} | {c['no tests']} | {c['timeout']} | {score} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mutation.md")
    args = parser.parse_args()
    by_module = results(args.mutants)
    if not by_module:
        raise SystemExit(f"no mutmut results under {args.mutants}; fix: run ./run.sh mutation")
    rows, survivors = summary(by_module)
    md = [
        f"Machine: {machine()}",
        "Score: mutants killed (or timed out) over all mutants judged, those no selected test reaches included.",
        "",
        *rows,
        "",
        f"Survivors ({len(survivors)}; `mutmut show NAME` prints one):",
        "",
        *[f"- `{name}`" for name in survivors],
    ]
    args.out.write_text("\n".join(md) + "\n")
    print("\n".join(md[:len(rows) + 3]))


if __name__ == "__main__":
    main()
