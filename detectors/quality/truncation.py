"""Truncation: was the answer cut off?

In order of certainty: the provider's finish reason (``length``, ``max_tokens``, or a content
filter), the output-token count reaching the request's ``max_tokens``, a code block opened and
never closed, and prose that stops mid-sentence. The finish reason and max tokens are read from
``Event.attributes`` (:data:`FINISH_KEYS`, :data:`MAX_TOKENS_KEYS`), where the worker puts the
call's ``finish_reason`` field and request attributes.

>>> truncation("Here is the plan.", {"gen_ai.response.finish_reasons": '["length"]'}).label
'finish_reason_length'
>>> truncation("```python\\nprint('hi')\\n", {}).label
'unclosed_code_block'
>>> truncation("You can stop a process that hangs with kill. First find its id with ps aux, then "
...            "send it SIGTERM; if it still runs after a few seconds, send it the", {}).label
'mid_sentence'
>>> truncation("Paris", {}).label
'complete'
"""
from __future__ import annotations

import re
from typing import Mapping

from .result import EvalResult, ok

FINISH_KEYS = ("gen_ai.response.finish_reasons", "gen_ai.response.finish_reason", "finish_reason", "llm.finish_reason")
MAX_TOKENS_KEYS = ("gen_ai.request.max_tokens", "max_tokens", "llm.request.max_tokens")
LENGTH_REASONS = frozenset({"length", "max_tokens", "max_output_tokens", "model_length", "token_limit"})
FILTER_REASONS = frozenset({"content_filter", "safety", "recitation", "blocklist", "prohibited_content"})
MIN_PROSE_CHARS = 120  # shorter answers ("42", "Paris") often have no final punctuation
_FUNCTION_WORDS = frozenset(
    "a an the and or but of to in on at for with by from as that which who whose is are was were be if then than "
    "so because while when where your my our their his her its this these those".split()
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_LIST_MARKER = re.compile(r"^(?:[-*•+]|\d+[.)])\s+")


def finish_reason(attributes: Mapping[str, str]) -> str:
    """The first finish reason in ``attributes`` (lower case; JSON-list form accepted), or ''.

    >>> finish_reason({"finish_reason": "MAX_TOKENS"}), finish_reason({"gen_ai.response.finish_reasons": '["stop"]'})
    ('max_tokens', 'stop')
    """
    for key in FINISH_KEYS:
        raw = attributes.get(key)
        if raw:
            first = str(raw).strip().strip("[]").split(",")[0]
            return first.strip().strip("'\"").lower()
    return ""


def _max_tokens(attributes: Mapping[str, str]) -> int | None:
    for key in MAX_TOKENS_KEYS:
        try:
            value = int(str(attributes.get(key, "")).strip())
        except ValueError:
            continue
        if value > 0:
            return value
    return None


def mid_sentence(text: str) -> float:
    """0 when prose ends cleanly, 0.7 when it stops mid-sentence, 0.85 when it stops on a comma
    or a function word ("... and the"). Headings, tables, URLs, short list items ("- eggs") and
    short answers count as clean; a long list item is prose.

    >>> mid_sentence("It works. Then the"), mid_sentence("It works well.")
    (0.0, 0.0)
    """
    body = text.rstrip()
    if len(body) < MIN_PROSE_CHARS or not re.search(r"[.!?。！？]\s", body):
        return 0.0
    last_line = body.splitlines()[-1].strip()
    if (not last_line or last_line.startswith(("#", "|", ">")) or last_line.endswith("|")
            or re.search(r"https?://\S+$", last_line)):
        return 0.0
    item = _LIST_MARKER.sub("", last_line)
    words = _WORD.findall(item.lower())
    if len(words) < (6 if item != last_line else 3):
        return 0.0
    end = item[-1]
    if end in ",;-–—(/&+=":
        return 0.85
    if not end.isalnum():
        return 0.0  # . ! ? : ) " ' ` * … and emoji all close a sentence or a line of markup
    return 0.85 if words[-1] in _FUNCTION_WORDS else 0.7


def truncation(text: str, attributes: Mapping[str, str], output_tokens: int | None = None) -> EvalResult:
    """The truncation evaluation of one response."""
    reason = finish_reason(attributes)
    if reason in LENGTH_REASONS:
        return EvalResult("truncation", 1.0, "finish_reason_length", f"finish reason {reason!r}", True, 1.0)
    if reason in FILTER_REASONS:
        return EvalResult("truncation", 1.0, "content_filter", f"finish reason {reason!r}: cut by a filter", True, 1.0)
    limit = _max_tokens(attributes)
    if limit is not None and output_tokens is not None and output_tokens >= limit:
        return EvalResult("truncation", 1.0, "max_tokens_reached", f"{output_tokens} output tokens, max_tokens {limit}",
                          True, 1.0)
    if text.count("```") % 2 == 1:
        return EvalResult("truncation", 0.9, "unclosed_code_block", "a ``` code block is opened and never closed",
                          True, 0.9)
    cut = mid_sentence(text)
    if cut:
        tail = text.rstrip()[-40:].replace("\n", " ")
        return EvalResult("truncation", cut, "mid_sentence", f"ends mid-sentence: ...{tail!r}", True, cut)
    return ok("truncation", "complete", f"finish reason {reason!r}" if reason else "ends cleanly")
