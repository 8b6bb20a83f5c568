"""The bot's own wordings: several per entry, each keeping every fact, none the reference sentence."""

from __future__ import annotations

import re

import pytest

from llm_release.sandbox.bot import entry_phrasings
from llm_release.sandbox.fault_library import split_sentences
from llm_release.sandbox.phrasings import load_phrasings
from llm_release.suites.knowledge_base import KnowledgeBase

KB = KnowledgeBase.load()

# An independent, deliberately simple reading of numbers for this test (not the sandbox's numwords).
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen")
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_WORDS = {w: i for i, w in enumerate(_UNITS.split(" "))} | {w: 10 * (i + 2) for i, w in enumerate(_TENS.split(" "))}


def values(text: str) -> set[float]:
    found = {float(d.replace(",", "")) for d in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", text)}
    for compound in re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower()):
        parts = compound.split("-")
        if all(part in _WORDS for part in parts):
            found.add(float(sum(_WORDS[part] for part in parts)))
    return found


def test_every_entry_has_at_least_three_phrasings_and_no_stray_ids() -> None:
    phrasings = load_phrasings().entries
    assert set(phrasings) == {entry.id for entry in KB.entries}
    assert all(len(phrasings[entry.id]) >= 3 for entry in KB.entries)


@pytest.mark.parametrize("entry", KB.entries, ids=lambda e: e.id)
def test_every_phrasing_keeps_every_fact(entry) -> None:
    for phrasing in entry_phrasings(entry):
        assert " ".join(phrasing.split()) != " ".join(entry.answer.split()), "verbatim reference text"
        assert values(phrasing) >= {v for fact in entry.facts for v in values(fact)}, phrasing
        for fact in entry.facts:
            if not values(fact):
                assert fact.lower() in phrasing.lower(), (fact, phrasing)


@pytest.mark.parametrize("entry", KB.entries, ids=lambda e: e.id)
def test_phrasings_of_an_entry_differ_from_each_other_and_from_the_reference(entry) -> None:
    texts = entry_phrasings(entry)
    assert len(set(texts)) == len(texts)
    reference = set(split_sentences(entry.answer))
    # a correct answer is not the reference text: at most one sentence shared with it per phrasing
    assert all(len(reference & set(split_sentences(text))) == 0 for text in texts), entry.id


def test_fixed_answers_have_several_wordings() -> None:
    fixed = load_phrasings().fixed
    assert all(len(fixed[key]) >= 3 for key in ("fallback", "persona", "injection_refusal"))
    assert all("anything else I can help" in closing for closing in fixed["candidate_closing"])
