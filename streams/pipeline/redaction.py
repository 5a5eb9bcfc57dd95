"""Redact PII and secrets from text before it is stored or published.

Detectors see the original text in memory; everything written to ClickHouse or a results topic
goes through a :class:`Redactor` first.

>>> r = Redactor.from_names("emails,cards,api_keys,phones")
>>> r.redact("mail bob@example.com, card 4111 1111 1111 1111, key sk-abcdefghijklmnopqrstuvwx")
'mail [EMAIL], card [CARD], key [API_KEY]'
>>> r.redact("call +1 (415) 555-0132 now")
'call [PHONE] now'
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

# Linear on hostile text: a match may only start where a run of local-part characters starts
# (the lookbehind), and that run is taken possessively. Without both, "a.a.…@b.b.…" was retried
# from every position: 128 KB blocked the event loop for 44 s.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits with optional single spaces/dashes; confirmed with the Luhn checksum below.
# Separators are possessive (a skipped space can never be followed by the digit the pattern
# needs next, so nothing is lost) to cut backtracking.
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?+){12,18}\d(?!\d)")
_API_KEY = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic style
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|xox[baprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_-]{35})"  # Google API key
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{16,}")
# Every match holds 9 to 14 digits (1-3, 2-4, 3 and 3-4), so no check follows: a callback per
# match cost 68 ms on 256 KB of "4111 4111 …".
# Optional marks and separators are possessive for the same reason (each is followed by a part
# that cannot start with it); equal to the plain pattern on 200,000 random digit strings.
_PHONE = re.compile(r"(?<![\w+])\+?+\d{1,3}?[ .-]?+\(?+\d{2,4}\)?+[ .-]?+\d{3}[ .-]?+\d{3,4}+(?![\w-])")


def _luhn_ok(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


#: More card-like numbers than this in one text is digit soup (a table of IDs, or an attack on
#: the checksum's cost): every candidate is redacted without the checksum. Over-redaction keeps
#: the cost linear (a 256 KB text of "4111 4111 …" took 80 ms with a checksum per candidate) and
#: leaks nothing.
MAX_CHECKED_CANDIDATES = 256


# Where a card can be: a run of digits, spaces and dashes holding 13 digits or more, found by a
# pattern that starts with a digit (so the engine skips everything else in C). A card match
# never crosses such a run's ends, and the character after a run is not a digit, so searching
# each run (plus that character, for the lookahead) finds exactly what a whole-text search does,
# at a quarter of the cost on 256 KB of "(1(1(1…".
_CARD_RUN = re.compile(r"\d[\d -]{11,}\d")


def _cards(text: str) -> str:
    runs = [(m.start(), min(len(text), m.end() + 1)) for m in _CARD_RUN.finditer(text)]
    found: list[re.Match[str]] = []
    for start, end in runs:
        # at most one candidate past the limit: digit soup is decided without listing it all
        found += itertools.islice(_CARD.finditer(text, start, end), MAX_CHECKED_CANDIDATES + 1 - len(found))
        if len(found) > MAX_CHECKED_CANDIDATES:  # digit soup: redact every candidate, no checksum
            return _sub_runs(text, runs)
    return _splice(text, [m for m in found if _luhn_ok(m.group())], "[CARD]")


def _sub_runs(text: str, runs: list[tuple[int, int]]) -> str:
    # A run's slice starts after a non-digit and ends with one, so the lookarounds see the same.
    pieces: list[str] = []
    at = 0
    for start, end in runs:
        pieces += (text[at:start], _CARD.sub("[CARD]", text[start:end]))
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def _splice(text: str, matches: list[re.Match[str]], label: str) -> str:
    """``text`` with each (ordered, non-overlapping) match replaced by ``label``."""
    if not matches:
        return text
    pieces: list[str] = []
    end = 0
    for m in matches:
        pieces += (text[end : m.start()], label)
        end = m.end()
    pieces.append(text[end:])
    return "".join(pieces)


# Cheap guards: most texts hold no candidate at all, and one search is far cheaper than a sub
# with a complex pattern (the ingest hot path redacts every message).
_DIGIT_RUN = re.compile(r"\d[\d ().+-]{7,}\d")
# The same on ASCII text, where \d is [0-9]: a set lookup per character instead of a Unicode
# category lookup, 40% faster on the ingest path's texts (which are mostly ASCII).
_DIGIT_RUN_ASCII = re.compile(r"[0-9][0-9 ().+-]{7,}[0-9]")
# After their literal prefix, found by the engine's prefix search ("gh" is in most English).
_FAMILY_HINTS = re.compile(r"gh[pousr]_|xox[baprs]-")


def _has_digit_run(text: str) -> bool:
    return (_DIGIT_RUN_ASCII if text.isascii() else _DIGIT_RUN).search(text) is not None


def _has_key_hint(text: str) -> bool:
    # Substring checks run at memory speed, and "bearer" in any case is found in the lowered
    # copy: 2 us on 2 KB where a case-insensitive regex took 18 us (and one alternation of
    # everything 10 ms on 256 KB).
    return (
        "sk-" in text or "AKIA" in text or "AIza" in text
        or (("gh" in text or "xox" in text) and _FAMILY_HINTS.search(text) is not None)
        or "bearer" in text.lower()
    )


MAY_MATCH: dict[str, Callable[[str], bool]] = {
    "emails": lambda t: "@" in t,
    "api_keys": _has_key_hint,
    "cards": lambda t: _CARD_RUN.search(t) is not None,
    "phones": _has_digit_run,
}

RULES: dict[str, Callable[[str], str]] = {
    "emails": lambda t: _EMAIL.sub("[EMAIL]", t) if "@" in t else t,
    "api_keys": lambda t: _BEARER.sub(r"\1[API_KEY]", _API_KEY.sub("[API_KEY]", t)) if _has_key_hint(t) else t,
    # cards before phones: a card number must not become a phone number
    "cards": _cards,
    "phones": lambda t: _PHONE.sub("[PHONE]", t) if _has_digit_run(t) else t,
}
DEFAULT_RULES = "emails,api_keys,cards,phones"


@dataclass(frozen=True)
class Redactor:
    """Applies the named rules, in the fixed order of :data:`RULES`."""

    rules: tuple[str, ...] = tuple(RULES)

    @classmethod
    def from_names(cls, names: str | Iterable[str]) -> "Redactor":
        """``"emails,cards"``, ``"all"`` or ``"none"``; unknown names raise naming the valid ones."""
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        names = list(names)
        if names == ["none"]:
            return cls(())
        if names == ["all"]:
            return cls()
        unknown = [n for n in names if n not in RULES]
        if unknown:
            raise ValueError(f"unknown redaction rule(s) {unknown}; valid: {', '.join(RULES)}, all, none")
        return cls(tuple(n for n in RULES if n in names))

    def redact(self, text: str) -> str:
        for name in self.rules:
            text = RULES[name](text)
        return text

    def redact_many(self, texts: list[str]) -> list[str]:
        """``[self.redact(t) for t in texts]``, with each rule's guard run once over all of them
        (a record's dozen short texts cost one check per rule, not a dozen).

        >>> Redactor().redact_many(["hi", "bob@example.com", "card 4111 1111 1111 1111"])
        ['hi', '[EMAIL]', 'card [CARD]']
        """
        if not self.rules:
            return texts
        joined = "\x00".join(texts)
        # every card run is also a digit run: no digit run, no need to look for either
        skip = set() if _has_digit_run(joined) else {"cards", "phones"}
        rules = [RULES[name] for name in self.rules if name not in skip and MAY_MATCH[name](joined)]
        if not rules:
            return texts
        out = []
        for text in texts:
            for rule in rules:
                text = rule(text)
            out.append(text)
        return out

    def redact_optional(self, text: str | None) -> str | None:
        return None if text is None else self.redact(text)

    def redact_value(self, value: Any) -> Any:
        """Redact every string inside nested lists/dicts (for evidence)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_value(v) for v in value]
        return value
