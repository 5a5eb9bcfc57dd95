"""Necessary literals of a regular expression: a cheap, sound prefilter for the rule scan.

For a pattern P, :func:`required_literals` returns a set of strings such that P can only match
a text that contains at least one of them (or ``None`` when no such set is known). ``str.__contains__``
runs in C at memory speed, so a rule whose literals are all absent is skipped without running its
pattern: on a 20,000-character adversarial text the scan went from 177 ms to a few ms, with
identical results (the test suite checks equality on the dev sets and the adversarial texts).

>>> sorted(required_literals(r"\\b(?:ignore|disregard)\\W+(?:all\\W+)?previous\\b"))
['previous']
>>> sorted(required_literals(r"(?:abc|cde)f"))
['abc', 'cde']
>>> required_literals(r"\\w+") is None
True
"""
from __future__ import annotations

from typing import Any

try:  # the parser behind ``re``; private, so every failure below means "no prefilter"
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
    from re._constants import (  # type: ignore[import-not-found]
        AT,
        BRANCH,
        LITERAL,
        MAX_REPEAT,
        MIN_REPEAT,
        POSSESSIVE_REPEAT,
        SUBPATTERN,
        ATOMIC_GROUP,
    )
except ImportError:  # pragma: no cover - a Python whose re internals moved
    _sre_parse = None

Needles = frozenset[str]

def _score(needles: Needles | None) -> tuple[int, int]:
    if not needles:
        return (-1, 0)
    return (min(len(n) for n in needles), -len(needles))


def _best(options: list[Needles]) -> Needles | None:
    return max(options, key=_score) if options else None


def _sequence(items: Any) -> Needles | None:
    """The most selective needle set of a concatenation: runs of literals, or one element's set."""
    options: list[Needles] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            options.append(frozenset(["".join(run)]))
            run.clear()

    for op, av in items:
        if op is LITERAL:
            run.append(chr(av))
            continue
        if op is AT:  # zero-width (\b, ^, $): literals on both sides stay adjacent
            continue
        close_run()
        inner = _element(op, av)
        if inner is not None:
            options.append(inner)
    close_run()
    return _best(options)


def _element(op: Any, av: Any) -> Needles | None:
    if op is SUBPATTERN:
        group, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            return None  # an inline flag (say, ignore case) changes what a literal matches
        return _sequence(sub)
    if op is ATOMIC_GROUP:
        return _sequence(av)
    if op is BRANCH:
        union: set[str] = set()
        for branch in av[1]:
            needles = _sequence(branch)
            if not needles:
                return None  # one branch can match without any literal
            union |= needles
        return frozenset(union)
    if op in (MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT):
        low, _high, sub = av
        return _sequence(sub) if low >= 1 else None
    return None  # classes, any-char, categories, lookarounds, back-references: no literal


def required_literals(pattern: str) -> Needles | None:
    """Strings of which every match of ``pattern`` contains one, or ``None`` if unknown."""
    if _sre_parse is None:
        return None
    try:
        parsed = _sre_parse.parse(pattern, 0)
    except Exception:  # noqa: BLE001 - re.compile reports a bad pattern, not the prefilter
        return None
    if parsed.state.flags & ~0x20:  # anything but re.UNICODE (the default for str patterns)
        return None
    needles = _sequence(parsed.data)
    if not needles or min(len(n) for n in needles) < 1:
        return None
    return needles
