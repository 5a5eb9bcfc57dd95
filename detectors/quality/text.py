"""Small text helpers shared by the quality checks.

>>> normalise("I\u2019m  SORRY,\\nbut no.")
"i'm sorry, but no."
>>> head("one two three four", 9)
'one two'
>>> non_latin_share("Привет мир"), non_latin_share("hello")
(1.0, 0.0)
"""
from __future__ import annotations

import re
import unicodedata

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"'})
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def normalise(text: str) -> str:
    """NFKC, straight quotes, lower case and single spaces: the form the cue patterns read."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return " ".join(text.lower().split())


def head(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text`` (whitespace collapsed), cut at a word boundary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def non_latin_share(text: str) -> float:
    """Share of letters that are not Latin script (0.0 for text without letters)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return 1.0 - sum(1 for c in letters if _LATIN.match(c)) / len(letters)
