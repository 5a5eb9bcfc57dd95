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
