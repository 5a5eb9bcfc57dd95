"""Language mismatch between the request and the answer (cheap: scripts and stop words).

What it covers: the writing system of each text (Latin, Cyrillic, Greek, Arabic, Hebrew,
Devanagari, Thai, Hangul -> ``ko``, kana -> ``ja``, Han without kana -> ``zh``) and, for Latin
script, seven languages told apart by their commonest function words (``en``, ``de``, ``fr``,
``es``, ``it``, ``pt``, ``nl``). Other Latin-script languages, Cyrillic languages among
themselves and very short texts come out undetermined (``und``) and never count as a mismatch.
Code (fenced or inline) is removed first. A request or system prompt that names the answer's
language ("answer in German", "translate into French") sets the expected language instead.

>>> detect_language("Wie spät ist es? Ich habe die Uhr nicht gesehen und weiß es nicht.")
'de'
>>> detect_language("Где находится ближайшая станция метро?")
'Cyrl'
>>> check_language("What time is it in Tokyo right now, and is it the same day as in London?",
...                "Il est actuellement dix heures du soir à Tokyo et c'est le même jour qu'à Londres.").label
'mismatch'
>>> check_language("Translate into French: good morning, my friends, have a nice day and a good week.",
...                "Bonjour mes amis, je vous souhaite une bonne journée et une belle semaine.").label
'match'
"""
from __future__ import annotations

import re

from .result import EvalResult, ok

MIN_LETTERS = 20
MIN_CJK = 6  # a Chinese, Japanese or Korean character carries about a word
MIN_STOPWORDS = 3
SCAN_CHARS = 3000
STOPWORDS: dict[str, frozenset[str]] = {lang: frozenset(words.split()) for lang, words in {
    "en": "the and is are was were of to in that it for with as on this be have has not you your what which how "
          "would could should there their they from will can do does a an at by but or if my we me i why who",
    "de": "der die das und ist nicht ich du sie wie was ein eine zu mit für auf den dem des sich auch es wir ihr "
          "bitte sind war oder aber wenn kann nach bei noch schon mein dein habe hat in im um viele warum",
    "fr": "le la les et est un une des du de que qui ne pas pour dans sur avec ce cette il elle nous vous je tu "
          "mais ou où sont été être avoir est-ce au aux son sa ses leur",
    "es": "el la los las y es un una de que en por para con no se lo su sus al del como más pero muy está son "
          "este esta yo tú usted nosotros hay qué cómo también dónde cuándo cuál",
    "it": "il lo la gli le e è un una di che in per con non si del della dei delle come più ma sono questo questa "
          "io tu lei noi anche perché cosa nel nella alla",
    "pt": "o a os as e é um uma de que em por para com não se do da dos das no na como mais mas são este esta eu "
          "você nós também porque ao à está",
    "nl": "de het een en is van dat die niet in op te met voor zijn er maar als ook bij nog wat hoe ik je jij wij "
          "u dit deze heb heeft kan wordt",
}.items()}
LANGUAGE_NAMES = {
    "english": "en", "german": "de", "deutsch": "de", "french": "fr", "français": "fr", "spanish": "es", "español": "es",
    "italian": "it", "portuguese": "pt", "dutch": "nl", "russian": "Cyrl", "ukrainian": "Cyrl", "chinese": "zh",
    "mandarin": "zh", "japanese": "ja", "korean": "ko", "arabic": "Arab", "hebrew": "Hebr", "hindi": "Deva",
    "greek": "Grek", "thai": "Thai",
}
_REQUEST = re.compile(
    r"\b(?:in|into|to|auf|en|em|in het) (" + "|".join(LANGUAGE_NAMES) + r")\b|\btranslat\w*|\bübersetz\w*|\btradu\w*",
    re.IGNORECASE,
)
_SCRIPTS = (
    ("Cyrl", re.compile(r"[\u0400-\u04ff]")), ("Grek", re.compile(r"[\u0370-\u03ff]")),
    ("Arab", re.compile(r"[\u0600-\u06ff\u0750-\u077f]")), ("Hebr", re.compile(r"[\u0590-\u05ff]")),
    ("Deva", re.compile(r"[\u0900-\u097f]")), ("Thai", re.compile(r"[\u0e00-\u0e7f]")),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")), ("kana", re.compile(r"[\u3040-\u30ff]")),
    ("Hani", re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")),
    ("Latn", re.compile(r"[A-Za-z\u00c0-\u024f]")),
)
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)?", re.UNICODE)


def _script(text: str) -> tuple[str, int]:
    counts = {name: len(rx.findall(text)) for name, rx in _SCRIPTS}
    total = sum(counts.values())
    if counts["Hani"] or counts["kana"]:
        cjk = "ja" if counts["kana"] else "zh"
        counts[cjk] = counts.pop("Hani") + counts.pop("kana")
    else:
        counts.pop("Hani"), counts.pop("kana")
    best = max(counts, key=lambda k: counts[k])
    return (best, total) if counts[best] >= 0.5 * max(1, total) else ("und", total)


def detect_language(text: str) -> str:
    """An ISO 639-1 code, an ISO 15924 script code, or ``und`` (undetermined)."""
    body = _CODE.sub(" ", text[:SCAN_CHARS])
    script, letters = _script(body)
    if script == "und" or letters < (MIN_CJK if script in ("zh", "ja", "ko") else MIN_LETTERS):
        return "und"
    if script != "Latn":
        return script
    words = [w.lower() for w in _WORD.findall(body)]
    scores = {lang: sum(w in stop for w in words) for lang, stop in STOPWORDS.items()}
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    (top, n1), (_, n2) = ranked[0], ranked[1]
    return top if n1 >= MIN_STOPWORDS and n1 >= 1.5 * max(n2, 1) else "und"


def requested_language(*texts: str | None) -> str | None:
    """The language a request names for the answer ("in German" -> ``de``); ``""`` for a translation
    task without a clear target; ``None`` when nothing is named.

    >>> requested_language("Please answer in German."), requested_language("Translate this"), requested_language("hi")
    ('de', '', None)
    """
    for text in texts:
        for match in _REQUEST.finditer((text or "")[:SCAN_CHARS]):
            if match.group(1):
                return LANGUAGE_NAMES[match.group(1).lower()]
        if text and _REQUEST.search(text[:SCAN_CHARS]):
            return ""
    return None


def check_language(prompt: str, response: str, system: str | None = None) -> EvalResult:
    """The language evaluation: mismatch when both sides are determined and differ."""
    answer = detect_language(response)
    asked = requested_language(prompt, system)
    expected = asked if asked else detect_language(prompt)
    if asked == "" or expected == "und" or answer == "und":
        why = "a translation request" if asked == "" else f"request {expected}, response {answer}"
        return ok("language", "undetermined", why)
    if expected == answer:
        return ok("language", "match", f"request {expected}, response {answer}", 1.0)
    source = "named in the request" if asked else "of the request"
    return EvalResult("language", 0.0, "mismatch", f"expected {expected} ({source}), response {answer}", True, 0.9)
