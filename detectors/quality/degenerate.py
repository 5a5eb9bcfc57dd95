"""Empty or degenerate output: nothing said, a placeholder, or a repetition loop.

>>> degenerate(" \\u200b ").label
'empty'
>>> degenerate("Dear [Customer Name], thank you for your order.").label
'placeholder'
>>> degenerate("I think so. " + "The answer is the answer is " * 30).label
'repetition_loop'
>>> degenerate("Paris is the capital of France.").label
'ok'
"""
from __future__ import annotations

import re
from collections import Counter

from .result import EvalResult, ok

MIN_WORDS_FOR_LOOP = 40
LOOP_BELOW = 0.35  # share of distinct word 4-grams; prose ~0.95, code ~0.6-0.8, loops < 0.2
SCAN_CHARS = 20000
_INVISIBLE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# "[Your Name]" but not a Markdown link "[your account](...)" nor code such as df[name]; code blocks
# (where {{ var }} is a Jinja or Vue template) are removed before the search.
_PLACEHOLDER = re.compile(
    r"(?i:\blorem ipsum\b|<(?:placeholder|insert[^>\n]{0,40})>|\[object object\])"
    r"|\[(?:Insert|INSERT|Your|YOUR|Placeholder|PLACEHOLDER|TODO|TBD|Customer|Company|Name|Recipient|Date|Add)\b[^\]\n]{0,40}\](?!\()"
    r"|\{\{\s*[\w.]+\s*\}\}"
)
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
_BARE = frozenset({"n/a", "na", "none", "null", "undefined", "nan", "todo", "tbd", "...", "…", "-", "?", "placeholder"})
_CHAR_RUN = re.compile(r"(\S.{0,19}?)\1{9,}", re.DOTALL)


def repeated_share(text: str) -> float:
    """1 - the share of distinct word 4-grams (0.0 under :data:`MIN_WORDS_FOR_LOOP` words).

    >>> repeated_share("a b c d " * 20) > 0.9, repeated_share("one two three")
    (True, 0.0)
    """
    words = [w.lower() for w in _WORD.findall(text[:SCAN_CHARS])]
    if len(words) < MIN_WORDS_FOR_LOOP:
        return 0.0
    grams = list(zip(words, words[1:], words[2:], words[3:]))
    return 1.0 - len(set(grams)) / len(grams)


def _repeated_line(text: str) -> tuple[str, int] | None:
    lines = [ln.strip() for ln in text[:SCAN_CHARS].splitlines() if len(ln.strip()) >= 10]
    if len(lines) < 5:
        return None
    line, count = Counter(lines).most_common(1)[0]
    return (line, count) if count >= 5 and count >= 0.5 * len(lines) else None


def degenerate(text: str) -> EvalResult:
    """The degenerate-output evaluation of one response."""
    bare = _INVISIBLE.sub(" ", text).strip()
    if not bare:
        return EvalResult("degenerate", 1.0, "empty", "the response is empty or whitespace", True, 1.0)
    hole = None if bare.lower() in _BARE else _PLACEHOLDER.search(_CODE.sub(" ", bare[:SCAN_CHARS]))
    if bare.lower() in _BARE or hole is not None:
        found = hole.group(0) if hole is not None else bare
        return EvalResult("degenerate", 0.9, "placeholder", f"placeholder text {found[:40]!r}", True, 0.9)
    share = repeated_share(bare)
    if share > 1.0 - LOOP_BELOW:
        return EvalResult("degenerate", share, "repetition_loop", f"{share:.0%} of word 4-grams are repeats", True,
                          min(1.0, 0.5 + share / 2))
    line = _repeated_line(bare)
    if line is not None:
        return EvalResult("degenerate", 0.8, "repetition_loop", f"the line {line[0][:40]!r} repeats {line[1]} times", True,
                          0.8)
    run = _CHAR_RUN.search(bare[-2000:])
    if run is not None and len(run.group(0)) >= 60 and any(c.isalnum() for c in run.group(1)):
        return EvalResult("degenerate", 0.8, "repetition_loop", f"{run.group(1)[:20]!r} repeats {len(run.group(0)) // len(run.group(1))} times",
                          True, 0.8)
    return ok("degenerate", "ok", "no empty, placeholder or looping output", share)
