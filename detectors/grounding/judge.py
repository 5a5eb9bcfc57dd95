"""An optional LLM judge for grounding, over any OpenAI-compatible chat-completions API.

Off by default (``GroundingDetector(judge=None)``). When attached, it is consulted on a
deterministic sample of events: an event is judged when
``blake2b(f"{seed}:{event_id}") / 2**64 < sample_rate``, so a replay judges the same events.

It never raises on the detection path: a timeout, an HTTP error or an unparseable answer
becomes a :class:`JudgeResult` with ``error`` set, the detector keeps its local score and the
evidence notes the error.

Blend rule (when the judge answers): the judge's unsupported probability is
``1 - confidence`` if it says "supported", else ``confidence``; the final score is
``(1 - weight) * local + weight * judge``. With the default ``weight=0.5`` and a fully
confident judge, the judge moves the score by up to 0.5, so a confident judge decides
the flag at the default threshold of 0.5 whichever way the local score leaned.
Both scores and the rule are recorded in ``evidence["judge"]``.

>>> j = LLMJudge("http://127.0.0.1:9/v1", "m", sample_rate=0.0)
>>> j.sampled("any-id")
False
>>> round(j.blend(0.2, JudgeResult(supported=False, confidence=1.0)), 2)
0.6
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ..base import Event, check_probability

SYSTEM_PROMPT = (
    "You check whether an assistant's answer is supported by the given context passages. "
    "An answer is supported only if every factual claim in it follows from the context; "
    "claims copied from the question are not evidence. Reply with JSON only: "
    '{"supported": true|false, "confidence": <number 0..1>, "unsupported_claims": [<strings>]}'
)
MAX_CONTEXT_CHARS = 6000


@dataclass(frozen=True)
class JudgeResult:
    """What the judge said (or why it could not say)."""

    supported: bool | None = None
    confidence: float = 0.0
    unsupported_claims: tuple[str, ...] = ()
    error: str | None = None

    @property
    def unsupported_probability(self) -> float:
        if self.supported is None:
            return 0.5
        return 1.0 - self.confidence if self.supported else self.confidence

    def as_evidence(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        return {
            "supported": self.supported,
            "confidence": round(self.confidence, 4),
            "unsupported_claims": list(self.unsupported_claims),
        }


class LLMJudge:
    """Asks an OpenAI-compatible ``POST {base_url}/chat/completions`` for a JSON verdict.

    Parameters
    ----------
    base_url: e.g. ``"http://localhost:8000/v1"`` (no trailing ``/chat/completions``).
    model: the model name sent in the request body.
    api_key: sent as ``Authorization: Bearer <api_key>`` when given.
    sample_rate: fraction of events judged, chosen deterministically from the event id.
    timeout_s: per-request timeout (connect, read and write), seconds.
    seed: salts the sampling hash (a different seed judges a different sample).
    weight: the judge's weight in the blend (see the module docstring).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        sample_rate: float = 0.1,
        timeout_s: float = 5.0,
        seed: int = 0,
        weight: float = 0.5,
    ) -> None:
        if not isinstance(base_url, str) or not re.match(r"^https?://[^/\s]+", base_url):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        if api_key is not None and not isinstance(api_key, str):
            raise ValueError(f"api_key must be a string or None, got {type(api_key).__name__}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise ValueError(f"timeout_s must be a positive number, got {timeout_s!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.sample_rate = check_probability("sample_rate", sample_rate)
        self.timeout_s = float(timeout_s)
        self.seed = seed
        self.weight = check_probability("weight", weight)

    def __repr__(self) -> str:  # never print the key
        key = "***" if self.api_key else None
        return (f"LLMJudge(base_url={self.base_url!r}, model={self.model!r}, api_key={key!r}, "
                f"sample_rate={self.sample_rate!r}, timeout_s={self.timeout_s!r}, seed={self.seed!r}, "
                f"weight={self.weight!r})")

    # -- sampling and blending -----------------------------------------------------------------
    def sampled(self, event_id: str) -> bool:
        """Deterministic: the same id, seed and rate always give the same answer."""
        if self.sample_rate <= 0.0:
            return False
        if self.sample_rate >= 1.0:
            return True
        h = hashlib.blake2b(f"{self.seed}:{event_id}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "big") / 2.0**64 < self.sample_rate

    def blend(self, local_score: float, result: JudgeResult) -> float:
        return (1.0 - self.weight) * local_score + self.weight * result.unsupported_probability

    # -- the call ------------------------------------------------------------------------------
    def judge(self, event: Event) -> JudgeResult | None:
        """``None`` when the event is not sampled; otherwise the judge's result (never raises)."""
        if not self.sampled(event.event_id):
            return None
        try:
            return self._ask(event)
        except Exception as exc:  # noqa: BLE001 - the detection path must not fail on the judge
            return JudgeResult(error=f"{type(exc).__name__}: {exc}"[:300])

    def messages(self, event: Event) -> list[dict[str, str]]:
        ctx = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(event.context or ()))[:MAX_CONTEXT_CHARS]
        user = f"Context passages:\n{ctx}\n\nQuestion:\n{event.prompt}\n\nAnswer to check:\n{event.response or ''}"
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

    def _ask(self, event: Event) -> JudgeResult:
        import httpx

        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "messages": self.messages(event), "temperature": 0, "max_tokens": 200}
        resp = httpx.post(f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s)
        if resp.status_code != 200:
            return JudgeResult(error=f"HTTP {resp.status_code}: {resp.text[:200]}")
        content = resp.json()["choices"][0]["message"]["content"]
        return parse_verdict(content)


def parse_verdict(content: str) -> JudgeResult:
    """Parse the model's reply (JSON, possibly inside a ``` fence or surrounded by prose).

    >>> parse_verdict('```json\\n{"supported": false, "confidence": 0.9}\\n```').supported
    False
    """
    m = re.search(r"\{.*\}", content or "", flags=re.S)
    if not m:
        return JudgeResult(error=f"no JSON object in judge reply: {content[:120]!r}")
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError as exc:
        return JudgeResult(error=f"bad JSON in judge reply: {exc}")
    sup = data.get("supported")
    if not isinstance(sup, bool):
        return JudgeResult(error=f"judge reply lacks a boolean 'supported': {data!r}"[:300])
    conf = data.get("confidence", 1.0)
    try:
        conf = min(1.0, max(0.0, float(conf)))
    except (TypeError, ValueError):
        conf = 1.0
    claims = data.get("unsupported_claims") or []
    claims = tuple(str(c) for c in claims) if isinstance(claims, list) else ()
    return JudgeResult(supported=sup, confidence=conf, unsupported_claims=claims)
