"""Deterministic training data for the claim judge: labelled claims generated from the knowledge base.

For each entry: supported claims are the answer's sentences and clauses and the hand-written
paraphrases of ``claim_banks``; contradicted claims negate a sentence (or drop its negation), swap two
quantities or the named things they belong to, swap a word for its opposite, or deny a fact ("We do not
support PayPal."); unsupported claims are invented statements from the fabrication bank (mostly without
numbers) and sentences with a wrong number. Same KB and seed -> the same rows, in the same order.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from llm_release.data.claim_banks import FABRICATIONS, PARAPHRASES, TOPICS
from llm_release.suites.claims import split_claims
from llm_release.suites.grounding import split_sentences
from llm_release.suites.numbers import parse_quantities

GENERATOR_VERSION = "perturb-v1"


@dataclass(frozen=True)
class ClaimRow:
    """One labelled claim: the entry it is judged against, a query for that entry, the claim, its label
    and how it was made."""

    entry_id: str
    query: str
    claim: str
    label: str
    kind: str


_NEGATE = [
    (r"\bcan no longer\b", "can still"), (r"\bcannot\b", "can"), (r"\bcan't\b", "can"), (r"\bdo not\b", "do"),
    (r"\bdon't\b", "do"), (r"\bare not\b", "are"), (r"\bis not\b", "is"), (r"\bnever\b", "always"),
    (r"\bnon-refundable\b", "refundable"), (r"\bnot\b ", ""),
    (r"\bcan\b", "cannot"), (r"\bwill\b", "will not"), (r"\bare\b", "are not"), (r"\bis\b", "is not"),
    (r"\bWe (accept|ship|respond|treat|send|retry)\b", r"We do not \1"), (r"\bincludes\b", "does not include"),
    (r"\b(takes|allows|holds|integrates|supports|saves|costs|receive|get)\b", r"no longer \1"),
]
_OPPOSITES = {
    "free": "charged", "before": "after", "after": "before", "annual": "monthly", "Annual": "Monthly",
    "monthly": "annual", "Monthly": "Annual", "immediately": "at the end of the period", "Upgrades": "Downgrades",
    "Downgrades": "Upgrades", "Standard": "Express", "Express": "Standard", "recipient": "sender",
    "Unopened": "Opened", "defective": "undamaged", "deducted": "added", "latest": "oldest", "over": "under",
    "under": "over", "active": "suspended", "read-only": "fully usable", "owner": "any member",
    "admins": "any member", "permanently deleted": "kept forever", "exclude": "include", "fully": "partly",
}
_DENIALS = ("We do not support {x}.", "{x} is not available.", "We no longer offer {x}.", "{x} cannot be used.")


def negate(sentence: str) -> str | None:
    for pattern, replacement in _NEGATE:
        changed, count = re.subn(pattern, replacement, sentence, count=1)
        if count and changed != sentence:
            return changed
    return None


def swap_quantities(sentence: str) -> str | None:
    qs = parse_quantities(sentence)
    for i, a in enumerate(qs):
        for b in qs[i + 1:]:
            if a.kind == b.kind and a.text != b.text:
                return sentence[:a.start] + b.text + sentence[a.end:b.start] + a.text + sentence[b.end:]
    return None


def swap_names(sentence: str) -> str | None:
    names = [m for m in re.finditer(r"\b(?:Starter|Pro|Business|Standard|Express|Visa|PayPal)\b", sentence)]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if a.group(0) != b.group(0):
                return (sentence[:a.start()] + b.group(0) + sentence[a.end():b.start()] + a.group(0)
                        + sentence[b.end():])
    return None


def opposite(sentence: str) -> str | None:
    for word, replacement in _OPPOSITES.items():
        changed, count = re.subn(rf"\b{re.escape(word)}\b", replacement, sentence, count=1)
        if count:
            return changed
    return None


def wrong_number(sentence: str, rng: random.Random) -> str | None:
    qs = [q for q in parse_quantities(sentence) if q.kind != "availability"]
    if not qs:
        return None
    q = rng.choice(qs)
    factor = rng.choice([0.5, 1.5, 2.0, 3.0])
    def fmt(v: float) -> str:
        v = max(1.0, round(v * factor)) if v else 0.0
        return str(int(v))
    new = re.sub(r"\d[\d,]*(?:\.\d+)?", lambda m: fmt(float(m.group(0).replace(",", ""))), q.text)
    words = {"one": "three", "two": "four", "three": "six", "five": "nine", "seven": "ten", "thirty": "sixty",
             "fifteen": "forty", "fourteen": "twenty-one", "sixty": "ninety"}
    new = re.sub(r"\b(" + "|".join(words) + r")\b", lambda m: words[m.group(1)], new)
    if new == q.text:
        return None
    return sentence[:q.start] + new + sentence[q.end:]


def generate(kb: Any, seed: int = 0) -> list[ClaimRow]:
    """The labelled claims for every entry of ``kb`` (deterministic for the KB and ``seed``)."""
    rng = random.Random(seed)
    rows: list[ClaimRow] = []
    for entry in kb.entries:
        queries = list(entry.questions)
        def add(claim: str | None, label: str, kind: str, entry_id: str = entry.id,
                queries: list[str] = queries) -> None:
            if claim and claim.strip():
                rows.append(ClaimRow(entry_id, rng.choice(queries), claim.strip(), label, kind))
        sentences = split_sentences(entry.answer)
        for sentence in sentences:
            add(sentence, "supported", "kb_sentence")
            for clause in split_claims(sentence):
                if clause != sentence:
                    add(clause, "supported", "kb_clause")
        for paraphrase in PARAPHRASES.get(entry.id, ()):
            add(paraphrase, "supported", "paraphrase")
            for clause in split_claims(paraphrase):
                if clause != paraphrase:
                    add(clause, "supported", "paraphrase_clause")
        for sentence in sentences + list(PARAPHRASES.get(entry.id, ())):
            add(negate(sentence), "contradicted", "negation")
            add(swap_quantities(sentence), "contradicted", "value_swap")
            add(swap_names(sentence), "contradicted", "entity_swap")
            add(opposite(sentence), "contradicted", "opposite")
            add(wrong_number(sentence, rng), "unsupported", "wrong_number")
        named = [f for f in entry.facts if re.search(r"[A-Z]", f) and not re.search(r"\d|>", f)]
        for fact in named[:3]:
            add(rng.choice(_DENIALS).format(x=fact), "contradicted", "denial")
        topics = TOPICS[entry.category]
        for template in rng.sample(FABRICATIONS, 6):
            add(template.format(topic=rng.choice(topics)), "unsupported", "fabrication")
        # An invented clause glued to a true sentence, as a bot appends one.
        base = rng.choice(sentences).rstrip(".")
        extra = rng.choice(FABRICATIONS).format(topic=rng.choice(topics)).rstrip(".")
        add(f"{base}, and {extra[0].lower()}{extra[1:]}.", "unsupported", "appended_fabrication")
    return rows


def rows_sha256(rows: Sequence[ClaimRow]) -> str:
    """The training-data version: sha256 of the rows as canonical JSON."""
    payload = json.dumps([asdict(r) for r in rows], sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(payload).hexdigest()


def split_of(entry_id: str) -> str:
    """train / calib / test by a hash of the entry id (held-out parts contain unseen entries)."""
    bucket = int(hashlib.sha256(entry_id.encode()).hexdigest(), 16) % 5
    return "calib" if bucket == 3 else "test" if bucket == 4 else "train"
