"""Adversarial texts for the regex worst cases: 256 KB shapes that make backtracking engines go
quadratic (long runs of one character class, separators that almost complete a match, a
breaker at the very end). Used by ``bench/bench_regex.py`` and ``tests/test_regex_worst_case.py``.

>>> texts = adversarial_texts(1024)
>>> all(len(t) <= 1024 + 8 for t in texts.values()) and len(texts) > 40
True
"""
from __future__ import annotations

SIZE = 256 * 1024

#: Units repeated to fill the text: character classes and separators of our patterns (emails,
#: cards, phones, keys, leetspeak, spaced letters, rule phrases, base64 and hex payloads).
UNITS = (
    "a", "1", " ", ".", "-", "_", "@", "+", "(", "=", "/", "\n", "\t", "é", "\u200b", "Ａ",
    "a.", "a@", "a-", "a_", "a ", " a", "1 ", "1-", "1.", "(1", "+1 ", "a1", "ab.", "x@x.", "a\n",
    "1 a", "a 1", "a . ", "a-b ", "4111 ", "+1 (", "sk-", "ghp_", "xoxb-", "AIza", "bearer ", "AKIA",
    "ignore ", "ignore all ", "previous ", "instructions ", "you are ", "system prompt ", "disregard the ",
    "now you ", "do not ", "forget ", "pretend ", "act as ", "reveal ", "i g n o r e ", "1gn0r3 ",
    "aGVsbG8g", "68656c6c6f", "vtaber ", "\\u0069", "&#105;", "%69", "<|", "###", "```", "[system]",
)
BREAKERS = ("", "!", "@", ".")


def adversarial_texts(size: int = SIZE) -> dict[str, str]:
    """Name -> text of about ``size`` characters: each unit repeated, with each breaker after
    it, and the two-sided email shape ``a.a.…@b.b.…`` of issue 12."""
    texts = {}
    for unit in UNITS:
        body = unit * max(1, size // len(unit))
        for breaker in BREAKERS:
            texts[f"{unit!r}*{len(body) // len(unit)}+{breaker!r}"] = body + breaker
    half = size // 4
    texts["'a.'*N+'@'+'b.'*N"] = "a." * half + "@" + "b." * half
    texts["'1 '*N+'@x.co'"] = "1 " * (size // 2) + "@x.co"
    return texts


def keyword_soup_texts(size: int = SIZE, variants: int = 3) -> dict[str, str]:
    """Text made of every needle of the injection rules (``heuristics.Rule.needles``), shuffled:
    the needle prefilter lets every rule through, so the scan's work budget is what bounds it.
    Also its rot13, so that the decoded payload is the soup."""
    import codecs
    import random

    from detectors.injection.heuristics import RULES

    needles = sorted({n for rule in RULES if rule.needles for n in rule.needles})
    rng = random.Random(1)
    texts = {}
    for variant in range(variants):
        rng.shuffle(needles)
        unit = " ".join(needles) + " "
        texts[f"keyword soup {variant}"] = (unit * (size // len(unit) + 1))[:size]
    texts["keyword soup, rot13"] = codecs.encode(texts["keyword soup 0"], "rot13")
    texts["keyword soup, no spaces"] = ("x".join(needles) * (size // len(needles) + 1))[:size]
    return texts
