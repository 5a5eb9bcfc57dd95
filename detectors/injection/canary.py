"""Layer 4: canary-token leak detection on model outputs.

An application plants a random canary token in its system prompt; if the token ever shows up
in a response, the system prompt leaked (the tell-tale of a successful extraction attack).

>>> from detectors.base import Event
>>> det = CanaryDetector({"shop": ["cnry-7f3a9c2e"]})
>>> v = det.detect(Event(app="shop", response="Sure! My instructions start with cnry-7f3a9c2e ..."))
>>> (v.flagged, v.label, v.evidence["tokens"])
(True, 'canary_leak', ['cnry…'])
>>> det.detect(Event(app="shop", response="Here is your order status.")).flagged
False
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Mapping, Sequence

from detectors.base import Detector, Event, Verdict, register

_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
_SEP = re.compile(r"[\s\-_.:/\\|,'\"`*]+")
MIN_TOKEN_LEN = 6


def _squash(text: str) -> str:
    """Case-, width-, separator- and zero-width-insensitive form used for the obfuscated match."""
    return _SEP.sub("", _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))).casefold()


def _mask(token: str) -> str:
    return token[:4] + "…"


@register
class CanaryDetector(Detector):
    """Flag responses that contain a registered canary token of the event's app.

    ``canaries`` maps app name to its tokens. When the event's app is empty or has no tokens
    registered, every registered token is checked. Matching is exact first, then on a squashed
    form (case, Unicode width, zero-width characters and separators removed) so a model that
    spells the token with dashes or spaces is still caught.
    """

    name = "canary"
    version = "1.0.0"

    def __init__(self, canaries: Mapping[str, Sequence[str]] | None = None, threshold: float = 0.5) -> None:
        if canaries is not None and not isinstance(canaries, Mapping):
            raise ValueError(f"canaries must be a dict of app -> list of tokens or None, got {canaries!r}")
        from detectors.base import check_probability

        self.threshold = check_probability("threshold", threshold)
        self.canaries: dict[str, list[str]] = {}
        for app, tokens in (canaries or {}).items():
            if isinstance(tokens, str) or not isinstance(tokens, Sequence):
                raise ValueError(f"canaries[{app!r}] must be a list of tokens, got {tokens!r}")
            for token in tokens:
                self.register(app, token)

    def register(self, app: str, token: str) -> None:
        """Add ``token`` as a canary of ``app`` (ValueError if it is too short to be safe)."""
        if not isinstance(app, str):
            raise ValueError(f"app must be a string, got {app!r}")
        if not isinstance(token, str) or len(token.strip()) < MIN_TOKEN_LEN:
            raise ValueError(f"canary token must be a string of at least {MIN_TOKEN_LEN} characters, got {token!r}")
        tokens = self.canaries.setdefault(app, [])
        if token not in tokens:
            tokens.append(token)

    def new_token(self, app: str, prefix: str = "cnry-") -> str:
        """Generate, register and return a fresh random canary for ``app``."""
        token = prefix + secrets.token_hex(8)
        self.register(app, token)
        return token

    def _tokens_for(self, app: str) -> list[str]:
        if app and self.canaries.get(app):
            return list(self.canaries[app])
        return [t for tokens in self.canaries.values() for t in tokens]

    def detect(self, event: Event) -> Verdict:
        if event.response is None:
            return Verdict(self.name, self.version, 0.0, False, self.threshold, {"checked": 0}, "no_response")
        tokens = self._tokens_for(event.app)
        if not tokens:
            return Verdict(self.name, self.version, 0.0, False, self.threshold, {"checked": 0}, "no_canaries")
        leaked, how = [], "exact"
        for token in tokens:
            if token in event.response:
                leaked.append(token)
        if not leaked:
            squashed = _squash(event.response)
            leaked = [t for t in tokens if _squash(t) and _squash(t) in squashed]
            how = "obfuscated"
        if leaked:
            evidence = {"tokens": [_mask(t) for t in leaked], "match": how, "checked": len(tokens), "app": event.app}
            return Verdict(self.name, self.version, 1.0, True, self.threshold, evidence, "canary_leak")
        return Verdict(self.name, self.version, 0.0, False, self.threshold, {"checked": len(tokens)}, "clean")
