"""User-controlled text never costs super-linear time: redaction and the injection heuristics on
hostile shapes (``bench/adversarial.py``) grow linearly with the text. A quadratic pattern
quadruples its time when the text doubles; a linear one doubles it. The email pattern that took
44 s on 128 KB fails this test by orders of magnitude; absolute worst cases at 256 KB are in
``bench/results/regex.md``.
"""
from __future__ import annotations

import time
from typing import Callable

import pytest

from bench.adversarial import adversarial_texts
from detectors.injection.heuristics import _scan
from streams.pipeline.redaction import Redactor

# The shapes that were quadratic or are the most expensive per character (bench/results/regex.md).
SHAPES = ("'a.'*N+'@'+'b.'*N", "'AKIA'", "'a1'", "'1.'", "'4111 '", "'+1 '", "'(1'", "'1 '*N+'@x.co'",
          "'```'", "'_'", "'='", "'[system]'", "'x@x.'", "'ignore '")


def _texts(size: int) -> dict[str, str]:
    return {k: v for k, v in adversarial_texts(size).items() if k.startswith(SHAPES) and not k.endswith(("'.'", "'!'"))}


def _best_of(fn: Callable[[str], object], text: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - started)
    return best


def _superlinear(fn: Callable[[str], object], small: int, large: int) -> list[str]:
    bad = []
    for (name, short), long in zip(_texts(small).items(), _texts(large).values()):
        t_small, t_large = _best_of(fn, short), _best_of(fn, long)
        ratio = t_large / max(t_small, 1e-4)
        # 4x the text: linear is ~4x, quadratic ~16x; allow noise and fixed costs up to 8x.
        if t_large > 0.005 and ratio > 8:
            bad.append(f"{name}: {t_small * 1000:.1f} ms -> {t_large * 1000:.1f} ms ({ratio:.0f}x for 4x the text)")
    return bad


def test_redaction_is_linear_on_hostile_text() -> None:
    redactor = Redactor.from_names("all")
    assert not _superlinear(redactor.redact, 64 * 1024, 256 * 1024)


def test_heuristic_scan_is_linear_on_hostile_text() -> None:
    # The scan reads at most 20,000 characters: compare 4,000 with 16,000.
    assert not _superlinear(lambda t: _scan(t, True, 20000), 4000, 16000)


@pytest.mark.parametrize("shape", ["'a.'*N+'@'+'b.'*N", "'4111 '*52428+''"])
def test_the_worst_known_shapes_stay_under_a_tenth_of_a_second(shape: str) -> None:
    text = adversarial_texts()[shape]
    assert _best_of(Redactor.from_names("all").redact, text) < 0.1
