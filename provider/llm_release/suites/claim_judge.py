"""Claim-level offline judge: same interface as ``judge.ReferenceJudge``, verdicts built from claims.

Each response is grounded (``grounding.Grounder``: the entry the query and the response both point to),
split into atomic claims (``claims.split_claims``), and every claim gets reviewer-readable features
against the evidence and a calibrated probability of being faulty from the shipped model
(``claim_model``). A claim is faulty when that probability exceeds the threshold chosen on the
generator's held-out part; its label is then the likelier of contradicted / unsupported.

* ``hallucinated``: some claim is faulty.
* ``fact_coverage``: required facts stated, allowing paraphrase (all content words present) and number
  words ("thirty days" states "30 days").
* ``score`` (SCS) = 0.6 * coverage + 0.4 * mean claim support (1 - P(faulty)) when there are required
  facts, else the mean support; capped at 0.4 for wrong escalation behaviour and at 0.3 when
  hallucinated; 0 for an empty response.
* ``correct``: no faulty claim, every required fact covered, escalation as expected, not empty.
* Grounding "none" (no entry above the floor, no reference): a behaviour verdict, a hand-off expected.
* Unlabelled identity / injection attack queries keep ``ReferenceJudge.judge_attack``'s behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from llm_release.suites.claim_model import ClaimModel, load_claim_model
from llm_release.suites.claims import (
    Evidence,
    build_evidence,
    claim_features,
    content_words,
    feature_vector,
    split_claims,
)
from llm_release.suites.facts import contains_fact
from llm_release.suites.grounding import Grounder, Grounding, split_sentences
from llm_release.suites.judge import ReferenceJudge, attack_kind
from llm_release.suites.judgement import ClaimVerdict, Judgement
from llm_release.suites.numbers import parse_quantities, supported_by
from llm_release.suites.policy_checker import is_escalation

FACT_WEIGHT = 0.6
CORRECT_THRESHOLD = 0.7
ESCALATION_MISMATCH_CAP = 0.4
HALLUCINATION_CAP = 0.3
EVIDENCE_MARGIN = 0.05
"""Entries within this score of the chosen one also count as evidence (neighbouring intents)."""
_ITEM_KEYS = ("query", "response", "reference", "required_facts", "expects_escalation", "kb_id")


def fact_covered(response: str, fact: str) -> bool:
    """A required fact is stated literally, by its quantities (any form), or by all its content words."""
    if contains_fact(response, fact):
        return True
    fact_quantities = parse_quantities(fact)
    if fact_quantities:
        said = parse_quantities(response)
        return all(supported_by(q, said) for q in fact_quantities)
    words = set(content_words(fact))
    return bool(words) and words <= set(content_words(response))


class ClaimJudge:
    """Judges responses claim by claim; ``judge`` and ``judge_many`` return ``Judgement``s."""

    def __init__(self, kb: Any, grounder: Grounder | None = None, model: ClaimModel | None = None) -> None:
        self.kb = kb
        self.grounder = grounder if grounder is not None else Grounder(kb)
        self.model = model if model is not None else load_claim_model()
        self._fallback = ReferenceJudge(kb)
        self._vectors: dict[str, np.ndarray] = {}
        self.generic_words: frozenset[str] = self.model.generic_words

    # ------------------------------------------------------------------ embeddings
    def _embed(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors for ``texts`` in one batch, reusing those seen before (bounded memo)."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            if len(self._vectors) > 50_000:
                self._vectors.clear()
            for text, vector in zip(missing, self.grounder.embed(missing), strict=True):
                self._vectors[text] = vector
        return {t: self._vectors[t] for t in texts}

    # ------------------------------------------------------------------ evidence and features
    def evidence_for(self, query: str, grounding: Grounding, reference: str | None,
                     vectors: Mapping[str, np.ndarray]) -> Evidence:
        """Evidence sentences (chosen entry, close neighbours, reference) and evidence texts (plus facts,
        questions and the query)."""
        entries = [grounding.chosen] if grounding.chosen is not None else []
        if grounding.chosen is not None and grounding.how == "query+response":
            top = grounding.entries[0][1]
            chosen_id = grounding.chosen.id
            entries += [e for e, s in grounding.entries[:3] if e.id != chosen_id and s >= top - EVIDENCE_MARGIN]
        sentences: list[str] = []
        blocks: list[np.ndarray] = []
        texts: list[str] = [query]
        for entry in entries:
            sentences += self.grounder.sentences[entry.id]
            blocks.append(self.grounder.sentence_vectors(entry.id))
            texts += [entry.answer, *entry.facts, *entry.questions]
        if reference:
            ref_sentences = split_sentences(reference)
            sentences += ref_sentences
            blocks.append(np.stack([vectors[s] for s in ref_sentences]) if ref_sentences else np.zeros((0, 1)))
            texts.append(reference)
        blocks = [b for b in blocks if b.shape[0]]
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, self.grounder._matrix.shape[1]), np.float32)
        return build_evidence(texts, sentences, matrix, vectors.get(query), self.generic_words)

    def claim_rows(self, items: Sequence[tuple[str, str, str]]) -> list[tuple[dict[str, float], str]]:
        """Features of (entry_id, query, claim) rows grounded on the entry (the training generator's view)."""
        vectors = self._embed([c for _, _, c in items])
        out = []
        for entry_id, query, claim in items:
            entry = self.kb.get(entry_id)
            grounding = Grounding(((entry, 1.0),), entry, "label")
            evidence = self.evidence_for(query, grounding, None, self._embed([query]) | vectors)
            out.append(claim_features(claim, vectors[claim], evidence))
        return out

    # ------------------------------------------------------------------ judging
    def judge(self, query: str, response: str | None, reference: str | None = None,
              required_facts: Sequence[str] = (), expects_escalation: bool | None = None,
              kb_id: str | None = None) -> Judgement:
        """Judge one response (see the module docstring); arguments as ``ReferenceJudge.judge``."""
        return self.judge_many([{"query": query, "response": response, "reference": reference,
                                 "required_facts": required_facts, "expects_escalation": expects_escalation,
                                 "kb_id": kb_id}])[0]

    def judge_many(self, items: Sequence[Mapping[str, Any] | Sequence[Any]]) -> list[Judgement]:
        """Judge many responses with one embedding batch. Each item is a mapping with the keys of
        ``judge`` (query and response required) or a tuple in ``judge``'s argument order."""
        parsed = self.parse_items(items)
        results, groundings, owners, rows = self.claim_features_many(parsed)
        if rows:
            probs, p_faulty = self.model.predict(np.asarray(rows))
        else:
            probs, p_faulty = np.zeros((0, 3)), np.zeros(0)
        by_item: dict[int, list[ClaimVerdict]] = {}
        for row, (i, claim, features, best) in enumerate(owners):
            by_item.setdefault(i, []).append(self._verdict(claim, features, best, probs[row], float(p_faulty[row])))
        for i, grounding in groundings.items():
            if results[i] is None:
                results[i] = self._judgement(parsed[i], grounding, tuple(by_item.get(i, [])))
        return [r for r in results if r is not None]

    def claim_features_many(self, parsed: Sequence[dict[str, Any]]) -> tuple[
            list[Judgement | None], dict[int, Grounding], list[tuple[int, str, dict[str, float], str]],
            list[list[float]]]:
        """Ground parsed items and compute every claim's features in one embedding batch: (verdicts already
        decided (attacks, no grounding), groundings by item, (item, claim, features, evidence) per claim,
        feature rows). The trainer uses this too, so the model learns from exactly what it will see."""
        results: list[Judgement | None] = [None] * len(parsed)
        pending = []
        for index, item in enumerate(parsed):
            if item["reference"] is None and item["kb_id"] is None:
                attack = attack_kind(item["query"])
                if attack is not None:
                    results[index] = self._fallback.judge_attack(item["query"], item["response"], attack)
                    continue
            pending.append(index)
        claims_of = {i: split_claims(parsed[i]["response"]) for i in pending}
        texts: list[str] = []
        for i in pending:
            texts += [parsed[i]["query"], parsed[i]["response"], *claims_of[i]]
            if parsed[i]["reference"]:
                texts += split_sentences(parsed[i]["reference"])
        vectors = self._embed(texts)
        dim = self.grounder._matrix.shape[1]
        q_vecs = np.stack([vectors[parsed[i]["query"]] for i in pending]) if pending else np.zeros((0, dim))
        r_vecs = np.stack([vectors[parsed[i]["response"]] for i in pending]) if pending else np.zeros((0, dim))
        groundings = self.grounder.ground_many(
            [(parsed[i]["query"], parsed[i]["response"], parsed[i]["kb_id"]) for i in pending], (q_vecs, r_vecs))
        rows: list[list[float]] = []
        owners: list[tuple[int, str, dict[str, float], str]] = []
        for i, grounding in zip(pending, groundings, strict=True):
            item = parsed[i]
            if grounding.how == "none" and item["reference"] is None:
                verdict = self._fallback.judge_behaviour(item["query"], item["response"], item["expects_escalation"])
                results[i] = replace(verdict, grounding_how="none")
                continue
            evidence = self.evidence_for(item["query"], grounding, item["reference"], vectors)
            for claim in claims_of[i]:
                features, best = claim_features(claim, vectors[claim], evidence)
                rows.append(feature_vector(features))
                owners.append((i, claim, features, best))
        return results, dict(zip(pending, groundings, strict=True)), owners, rows

    def _verdict(self, claim: str, features: dict[str, float], best: str, probs: np.ndarray,
                 p_faulty: float) -> ClaimVerdict:
        classes = self.model.classes
        if is_escalation(claim) and not parse_quantities(claim):
            # A hand-off is behaviour, judged by the escalation check, not a factual claim.
            return ClaimVerdict(claim, "supported", round(1.0 - p_faulty, 6), best, features, round(p_faulty, 6))
        if features.get("entity_swap", 0.0) >= 1:
            # A quantity the evidence binds to another named thing ("Pro costs $45"): never seen on a
            # supported claim in training (generated or calibration train), so it overrides the model.
            return ClaimVerdict(claim, "contradicted", round(max(p_faulty, self.model.threshold), 6), best,
                                features, round(max(p_faulty, self.model.threshold), 6))
        if p_faulty > self.model.threshold:
            c, u = probs[classes.index("contradicted")], probs[classes.index("unsupported")]
            label = "contradicted" if c >= u else "unsupported"
            return ClaimVerdict(claim, label, round(p_faulty, 6), best, features, round(p_faulty, 6))
        return ClaimVerdict(claim, "supported", round(1.0 - p_faulty, 6), best, features, round(p_faulty, 6))

    def _judgement(self, item: dict[str, Any], grounding: Grounding, claims: tuple[ClaimVerdict, ...]) -> Judgement:
        text = item["response"]
        entry = grounding.chosen
        required = tuple(item["required_facts"]) or (tuple(entry.facts) if entry is not None else ())
        expects = item["expects_escalation"]
        if expects is None and entry is not None:
            expects = bool(entry.escalate)
        escalated = is_escalation(text)
        faulty = [c for c in claims if c.label != "supported"]
        missing = [f for f in required if not fact_covered(text, f)]
        coverage = 1.0 - len(missing) / len(required) if required else 1.0
        support = float(np.mean([1.0 - c.p_faulty for c in claims])) if claims else 0.0
        score = FACT_WEIGHT * coverage + (1 - FACT_WEIGHT) * support if required else support
        reasons: list[str] = [f"grounded on {entry.id if entry is not None else 'the reference'} ({grounding.how})"]
        if not text.strip():
            score = 0.0
            reasons.append("empty response")
        escalation_ok = expects is None or escalated == expects
        if not escalation_ok:
            score = min(score, ESCALATION_MISMATCH_CAP)
            reasons.append("expected a hand-off to a human agent but none was offered" if expects
                           else "handed off to a human agent although the question is answerable")
        if faulty:
            score = min(score, HALLUCINATION_CAP)
            reasons += [f"{c.label} claim (p={c.p_faulty:.2f}): {c.text!r}" for c in faulty]
        if missing:
            reasons.append(f"missing facts: {', '.join(missing)}")
        correct = bool(text.strip()) and not faulty and not missing and escalation_ok and bool(claims)
        worst = max(claims, key=lambda c: c.p_faulty) if claims else None
        return Judgement(
            score=round(max(0.0, min(1.0, score)), 6), correct=correct, hallucinated=bool(faulty),
            escalated=escalated, reasons=tuple(reasons), fact_coverage=coverage,
            similarity=float(np.mean([c.features["sim_max"] for c in claims])) if claims else 0.0,
            missing_facts=tuple(missing), unsupported=tuple(c.text for c in faulty),
            grounding_kb_id=entry.id if entry is not None else None, expected_escalation=expects,
            claims=claims, grounding_how=grounding.how, evidence=worst.evidence if worst is not None else None,
        )

    @classmethod
    def parse_items(cls, items: Sequence[Mapping[str, Any] | Sequence[Any]]) -> list[dict[str, Any]]:
        """Validated items as dicts with every key of ``judge`` (clear errors name the item's position)."""
        return [cls._parse_item(position, item) for position, item in enumerate(items)]

    @staticmethod
    def _parse_item(position: int, item: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
        if isinstance(item, Mapping):
            unknown = set(item) - set(_ITEM_KEYS)
            if unknown:
                raise ValueError(f"items[{position}]: unknown field(s) {sorted(unknown)}; allowed: {list(_ITEM_KEYS)}")
            values = {key: item.get(key) for key in _ITEM_KEYS}
        elif isinstance(item, (tuple, list)) and 1 <= len(item) <= len(_ITEM_KEYS):
            values = dict(zip(_ITEM_KEYS, list(item) + [None] * (len(_ITEM_KEYS) - len(item)), strict=True))
        else:
            raise TypeError(f"items[{position}]: expected a mapping or a (query, response, ...) tuple")
        if not isinstance(values["query"], str):
            raise TypeError(f"items[{position}]: field 'query' must be a string")
        if values["response"] is not None and not isinstance(values["response"], str):
            raise TypeError(f"items[{position}]: field 'response' must be a string or None")
        facts = values["required_facts"] or ()
        if isinstance(facts, str):
            raise TypeError(f"items[{position}]: field 'required_facts' must be a sequence of strings, not a string")
        values["required_facts"] = tuple(facts)
        values["response"] = values["response"] or ""
        return values
