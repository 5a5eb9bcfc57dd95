"""Per-app allowlists: phrases and patterns the injection detector must not judge.

A security-training app quotes attacks on purpose, a support bot's knowledge base says "reply
to this email"; their owners allowlist those phrases rather than lowering the threshold for
everyone. Entries are literal phrases (matched case-insensitively) or, written ``re:...``,
regular expressions. Matches are replaced by spaces before any layer sees the text, so the
rest of the text is still judged (an attack appended after an allowlisted quote still fires).

>>> allow = Allowlist({"*": ["ignore previous instructions"], "sec-course": [r"re:\\bDAN\\b"]})
>>> allow.blanker("sec-course")("Why does 'Ignore previous instructions' work on DAN?").split()
['Why', 'does', "'", "'", 'work', 'on', '?']
>>> allow.blanker("other")("DAN mode")
'DAN mode'
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

ANY_APP = "*"


def _compile(entry: str) -> re.Pattern[str]:
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"allowlist entries must be non-empty strings, got {entry!r}")
    if entry.startswith("re:"):
        try:
            return re.compile(entry[3:], re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"allowlist pattern {entry!r} is not a valid regular expression: {exc}") from None
    return re.compile(re.escape(entry), re.IGNORECASE)


class Allowlist:
    """Compiled per-app entries; ``"*"`` applies to every app."""

    def __init__(self, entries: Mapping[str, Iterable[str]]) -> None:
        if not isinstance(entries, Mapping):
            raise ValueError(f"allowlist must map app names to lists of phrases, got {type(entries).__name__}")
        self.entries: dict[str, tuple[str, ...]] = {}
        for app, items in entries.items():
            if isinstance(items, str):
                raise ValueError(f"allowlist for {app!r} must be a list of phrases, got a string")
            self.entries[str(app)] = tuple(items)
        self._by_app = {app: tuple(_compile(e) for e in items) for app, items in self.entries.items()}

    def __repr__(self) -> str:
        return f"Allowlist({self.entries!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Allowlist) and other.entries == self.entries

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return any(self._by_app.values())

    def blanker(self, app: str | None) -> Callable[[str], str]:
        """A function that blanks this app's allowlisted spans (identity when there are none)."""
        patterns = self._by_app.get(ANY_APP, ()) + (self._by_app.get(app or "", ()) if app != ANY_APP else ())
        if not patterns:
            return lambda text: text

        def blank(text: str) -> str:
            for pattern in patterns:
                text = pattern.sub(lambda m: " " * len(m.group(0)), text)
            return text

        return blank
