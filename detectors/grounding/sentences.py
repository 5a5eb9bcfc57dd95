"""Text handling for grounding: sentence and clause splitting, content words, numbers, entities.

Pure Python (``re`` only) so it is cheap and deterministic. The tokeniser is deliberately
crude ("stemmed-ish"): lower-cased word tokens, a stopword list, and a light suffix stripper so
that "designed"/"designs"/"design" and "magazines"/"magazine" meet.

>>> split_sentences("Arthur's Magazine (1844-1846) was a periodical.First for Women is newer.")
["Arthur's Magazine (1844-1846) was a periodical.", 'First for Women is newer.']
>>> sorted(content_stems("The bridges were designed in 1922"))
['1922', 'bridg', 'design']
>>> sorted(numbers_in("It cost $5,016,723 over three years"))
['3', '5016723']
"""
from __future__ import annotations

import re
from typing import Iterable

# Sentence boundary: end punctuation then space, or end punctuation glued to a capital letter
# ("century.First for Women" in HaluEval contexts). Abbreviations like "U.S." stay whole
# because the next character after the inner dot is not followed by space+capital word.
_SENT_END = re.compile(r"(?<=[.!?])(?:\s+|(?=[A-Z][a-z]))")
_ABBREV = re.compile(r"(?:\b[A-Z]\.|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|No|Inc|Co|Ltd)\.)$")
# Clause boundaries used only for long sentences.
_CLAUSE = re.compile(r"\s*(?:;|,\s+(?:and|but|while|which|whereas|although)\s+|\s+but\s+)\s*")
_WORD = re.compile(r"[A-Za-z\u00C0-\u024F]+(?:'[A-Za-z]+)?|\d+(?:[.,]\d+)*")

LONG_SENTENCE_WORDS = 25
MIN_CLAUSE_WORDS = 4

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each either else even ever every few for from further get
    gets got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's however i i'd i'll i'm i've if in into is isn't it it's its
    itself just know let's like lot lots many may me might more most much must mustn't my myself
    neither nor not now of off oh ok okay on once one only or other ought our ours ourselves out
    over own pretty quite rather really said same say says see seem seems shall shan't she she'd
    she'll she's should shouldn't since so some something still such sure than that that's the
    their theirs them themselves then there there's these they they'd they'll they're they've
    thing things think this those though through thus to too under until up upon us very was
    wasn't we we'd we'll we're we've well were weren't what what's when when's where where's
    whether which while who who's whom whose why why's will with within without won't would
    wouldn't yeah yes yep you you'd you'll you're you've your yours yourself yourselves
    actually anyway definitely maybe probably right guess cool great good nice wow haha lol
    n't 's 're 've 'll 'd""".split()
)
NEGATIONS = frozenset("not no never none nobody nothing neither nor cannot n't without".split())

_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70",
                      "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000",
                      "million": "1000000", "billion": "1000000000", "first": "1",
                      "second": "2", "third": "3", "fourth": "4", "fifth": "5"})
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences; never returns empty strings."""
    text = " ".join(text.split())
    if not text:
        return []
    parts: list[str] = []
    buf = ""
    for piece in _SENT_END.split(text):
        buf = f"{buf} {piece}".strip() if buf else piece.strip()
        if buf and not _ABBREV.search(buf):
            parts.append(buf)
            buf = ""
    if buf:
        parts.append(buf)
    return [p for p in parts if any(ch.isalnum() for ch in p)]


# Citation markers RAG answers carry ("[3]", "(source: passage 2)", "According to the
# documentation [1],"): they point at the context rather than claim anything, so the numbers in
# them must not count as invented facts.
_CITATIONS = re.compile(
    r"\[(?:\d+(?:\s*[,-]\s*\d+)*|source|doc(?:ument)?\s*\d+|passage\s*\d+)\]"
    r"|\((?:sources?|see|cf\.?|ref(?:erence)?s?|passages?|docs?|documents?)\b[^()]{0,60}\)"
    r"|\b(?:based on|according to|as (?:stated|mentioned|described) in|per)\s+(?:the\s+)?"
    r"(?:passages?|documents?|documentation|sources?|context|docs?|retrieved (?:text|passages?))"
    r"(?:\s*(?:\[\d+\]|\d+))?\s*[:,]?\s*",
    re.IGNORECASE,
)


def strip_citations(text: str) -> str:
    """``text`` without citation markers.

    >>> strip_citations("Based on passage 4: The lamp costs $5. (source: passage 2) See [3].")
    'The lamp costs $5. See .'
    """
    return re.sub(r"\s{2,}", " ", _CITATIONS.sub("", text)).strip()


def split_claims(text: str, long_words: int = LONG_SENTENCE_WORDS) -> list[str]:
    """Sentences of ``text``, with sentences longer than ``long_words`` words cut into clauses.

    Clauses shorter than ``MIN_CLAUSE_WORDS`` words are glued back to their neighbour so a
    claim keeps its subject.

    >>> split_claims("Paris is in France, and it has a population of 90 million people there.", long_words=5)
    ['Paris is in France', 'it has a population of 90 million people there.']
    """
    claims: list[str] = []
    for sent in split_sentences(strip_citations(text)):
        if len(sent.split()) <= long_words:
            claims.append(sent)
            continue
        pieces = [p for p in _CLAUSE.split(sent) if p and p.strip()]
        merged: list[str] = []
        for p in pieces:
            if merged and (len(p.split()) < MIN_CLAUSE_WORDS or len(merged[-1].split()) < MIN_CLAUSE_WORDS):
                merged[-1] = f"{merged[-1]}, {p}"
            else:
                merged.append(p.strip())
        claims.extend(merged)
    return claims


def words(text: str) -> list[str]:
    """Word and number tokens in their original case."""
    return _WORD.findall(text)


def stem(word: str) -> str:
    """A light suffix stripper (lower-cased input): enough to match inflections, not lemmas."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 3 or w[0].isdigit():
        return w
    for suf, min_len in (("ational", 5), ("ization", 5), ("ingly", 4), ("ments", 4), ("ment", 4),
                         ("ness", 4), ("ities", 4), ("ity", 4), ("ing", 4), ("ies", 3),
                         ("ied", 3), ("ed", 4), ("es", 4), ("ly", 4), ("s", 3), ("e", 4)):
        if w.endswith(suf) and len(w) - len(suf) >= min_len - 1:
            w = w[: -len(suf)]
            if suf in ("ies", "ied"):
                w += "y"
            break
    return w


def _norm_number(tok: str) -> str | None:
    low = tok.lower()
    if low in _NUMBER_WORDS:
        return _NUMBER_WORDS[low]
    m = _ORDINAL.match(low)
    if m:
        return m.group(1)
    if tok[0].isdigit():
        t = tok.replace(",", "")
        if "." in t:
            t = t.rstrip("0").rstrip(".")
        return t
    return None


def numbers_in(text: str) -> set[str]:
    """Normalised numbers in ``text`` (digits without separators; number words as digits)."""
    out = set()
    for tok in re.findall(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?|[A-Za-z]+", text):
        n = _norm_number(tok)
        if n is not None:
            out.add(n)
    return out


def content_stems(text: str) -> set[str]:
    """Stemmed content words (stopwords out, numbers normalised)."""
    out = set()
    for tok in words(text):
        low = tok.lower()
        if low in STOPWORDS:
            continue
        n = _norm_number(tok) if tok[0].isdigit() else None
        out.add(n if n is not None else stem(low))
    return out


def content_list(text: str) -> list[str]:
    """Like :func:`content_stems` but ordered and with repeats (for overlap fractions)."""
    out = []
    for tok in words(text):
        low = tok.lower()
        if low in STOPWORDS:
            continue
        n = _norm_number(tok) if tok[0].isdigit() else None
        out.append(n if n is not None else stem(low))
    return out


def entities_in(text: str) -> list[str]:
    """Capitalised names (runs of capitalised words) and years/dates in ``text``.

    A capitalised word that starts a sentence counts only when it is not a stopword, so
    "The" or "Yes" never become entities but "Wiiija" (a one-word answer) does.

    >>> entities_in("Allie Goertz wrote a song about Marge in 1991.")
    ['Allie Goertz', 'Marge']
    """
    ents: list[str] = []
    for sent in split_sentences(text):
        toks = words(sent)
        run: list[str] = []
        for i, tok in enumerate(toks):
            is_cap = tok[:1].isupper() and tok.lower() not in STOPWORDS and tok.lower() not in MONTHS
            if is_cap:
                run.append(tok)
            else:
                if run:
                    ents.append(" ".join(run))
                run = []
        if run:
            ents.append(" ".join(run))
    return ents


def tokens_lower(text: str) -> list[str]:
    """All word tokens, lower-cased and stemmed (stopwords kept): for n-gram copy coverage."""
    return [stem(t) for t in words(text)]


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def copy_coverage(claim_tokens: list[str], source_ngrams: dict[int, set[tuple[str, ...]]]) -> float:
    """Fraction of the claim's tokens that sit inside a bigram copied from the source.

    One-token claims count a unigram match. Returns 0.0 for an empty claim.
    """
    n_tok = len(claim_tokens)
    if n_tok == 0:
        return 0.0
    if n_tok == 1:
        return 1.0 if (claim_tokens[0],) in source_ngrams[1] else 0.0
    covered = [False] * n_tok
    grams = source_ngrams[2]
    for i in range(n_tok - 1):
        if (claim_tokens[i], claim_tokens[i + 1]) in grams:
            covered[i] = covered[i + 1] = True
    return sum(covered) / n_tok


def has_negation(text: str) -> bool:
    low = text.lower()
    return "n't" in low or any(t in NEGATIONS for t in re.findall(r"[a-z]+", low))


def unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for it in items:
        seen.setdefault(it, None)
    return list(seen)
