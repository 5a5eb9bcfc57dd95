"""The synthetic training rows of the injection classifier: reproducible, labelled by construction."""
from __future__ import annotations

from collections import Counter

from detectors.training import injection_synth as synth


def test_rows_are_reproducible_and_the_seed_matters() -> None:
    assert synth.synthetic_rows(seed=0, per_language=30) == synth.synthetic_rows(seed=0, per_language=30)
    assert synth.synthetic_rows(seed=1, per_language=30) != synth.synthetic_rows(seed=0, per_language=30)


def test_every_language_has_attacks_and_benign_prompts_without_duplicates() -> None:
    rows = synth.synthetic_rows(seed=0, per_language=40)
    counts = Counter((r["lang"], r["label"]) for r in rows)
    for lang in synth.LANGUAGES:
        assert counts[(lang, 1)] >= 10 and counts[(lang, 0)] >= 10, lang
    texts = [r["prompt"] for r in rows]
    assert len(texts) == len(set(texts))


def test_benign_rows_never_carry_an_order_or_a_payload() -> None:
    """The label comes from construction: a benign row must hold none of the attack parts,
    or the classifier would be taught that an override is harmless."""
    attack_parts = [p for parts in (synth.OVERRIDES, synth.PAYLOADS, synth.PERSONA_ASKS) for ps in parts.values() for p in ps]
    attack_parts += [s.split("{name}")[-1] for s in synth.JAILBREAK_SENTENCES if len(s.split("{name}")[-1]) > 25]
    for row in synth.synthetic_rows(seed=0, per_language=120):
        if row["label"] == 0:
            assert not any(part in row["prompt"] for part in attack_parts), row


def test_attacks_hold_an_order_in_their_own_language() -> None:
    for row in synth.synthetic_rows(seed=0, per_language=60):
        if row["label"] == 1 and row["family"] != "roleplay":
            assert any(o in row["prompt"] for o in synth.OVERRIDES[row["lang"]]), row


def test_the_framed_experiment_takes_each_label_from_the_request() -> None:
    """In the framed-request experiment, fiction around a harmless request is benign and around a
    harmful one an attack, so the framing alone never decides the label; off by default."""
    assert not any(r["family"] == "framed" for r in synth.synthetic_rows(seed=0, per_language=250))
    rows = synth.synthetic_rows(seed=0, per_language=250, framed=True)
    framings = [f.split("{ask}")[0] for f in synth.NEUTRAL_FRAMINGS["en"]]
    framed = [r for r in rows if r["lang"] == "en" and any(r["prompt"].startswith(f) for f in framings)]
    assert {r["label"] for r in framed} == {0, 1}
    for r in framed:
        assert r["label"] == int(any(a in r["prompt"] for a in synth.HARMFUL_ASKS["en"])), r
    rule_breaking = [f.split("{ask}")[0] for fs in synth.RULE_BREAKING_FRAMINGS.values() for f in fs]
    assert all(r["label"] == 1 for r in rows if any(r["prompt"].startswith(f) for f in rule_breaking))
