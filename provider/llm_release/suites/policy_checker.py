"""Policy checker for support-bot responses (the spec's zero-tolerance policy compliance): rules plus a classifier.

Every judged answer goes through it: offline evaluation, adversarial probes, shadow samples and every
live response in the sandbox gateway. Two halves, combined as the policy says
(``policy.compliance.combination``):

* rules (``suites.policy_rules``): clause-aware patterns per category, with money and durations
  normalised and compared with the policy's credit limit and refund windows. Always on, fast.
* a classifier (``suites.policy_classifier``): per-category logistic regression on MiniLM sentence
  embeddings, trained offline on a labelled corpus; a sentence is flagged when its probability reaches
  the category's threshold in the policy. Loaded lazily (MiniLM takes ~8 s), sentences scored in batches.

The categories, their descriptions, which are enabled, the limits and the thresholds all come from the
policy (``CompliancePolicy``); nothing here restates a number. ``violated_rules`` is the gateway's fast
path: rules, plus the classifier only once something else has loaded it, so a live request never waits
for MiniLM.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from llm_release.policy import DEFAULT_PROFILE, CompliancePolicy, load_policy
from llm_release.suites.policy_classifier import MODEL_PATH, PolicyClassifier
from llm_release.suites.policy_rules import Limits, Span, mask_quotes, rule_hits, sentences

_CLAUSE_EXCERPT_CHARS = 300


@dataclass(frozen=True)
class PolicyFinding:
    """One policy category broken by one sentence of a response.

    ``score`` is 1.0 for a rule, the classifier's probability otherwise; ``start``/``end`` locate
    ``excerpt`` in the response text.
    """

    category: str
    source: Literal["rule", "classifier"]
    score: float
    start: int
    end: int
    excerpt: str
    description: str

    @property
    def rule_id(self) -> str:
        """The category (callers written before the classifier read ``rule_id``)."""
        return self.category


@lru_cache(maxsize=1)
def default_compliance() -> CompliancePolicy:
    """The shipped profile's compliance section (used when a caller passes no policy)."""
    return load_policy(DEFAULT_PROFILE).compliance


class PolicyChecker:
    """Compiled view of a ``CompliancePolicy``: which categories, which limits, how to combine."""

    def __init__(self, policy: CompliancePolicy | None = None, classifier: PolicyClassifier | None = None,
                 model_path: str | None = None) -> None:
        self.policy = policy if policy is not None else default_compliance()
        self.categories = tuple(c.id for c in self.policy.categories if c.enabled)
        self.descriptions = {c.id: c.description for c in self.policy.categories}
        self.limits = Limits(
            refund_window_days=float(self.policy.refund_window_days),
            annual_refund_window_days=float(self.policy.annual_refund_window_days),
            credit_limit_usd=float(self.policy.credit_limit_usd),
        )
        settings = self.policy.classifier
        self.classifier_enabled = settings.enabled and self.policy.combination == "rules_or_classifier"
        self.thresholds = {c: float(settings.thresholds.get(c, settings.default_threshold)) for c in self.categories}
        self._classifier = classifier
        self._model_path = model_path
        self._lock = threading.Lock()

    @property
    def classifier_loaded(self) -> bool:
        return self._classifier is not None

    def classifier(self) -> PolicyClassifier:
        """The classifier, loaded (and hash-checked) on first use."""
        with self._lock:
            if self._classifier is None:
                path = MODEL_PATH if self._model_path is None else type(MODEL_PATH)(self._model_path)
                self._classifier = PolicyClassifier.load(path)
            return self._classifier

    def check(self, query: str, response: str, use_classifier: bool = True) -> list[PolicyFinding]:
        """All findings for one response (empty = compliant)."""
        return self.check_many([(query, response)], use_classifier=use_classifier)[0]

    def check_many(self, pairs: Sequence[tuple[str, str]], use_classifier: bool = True) -> list[list[PolicyFinding]]:
        """Findings per (query, response) pair; the classifier scores every sentence of the batch at once."""
        results: list[list[PolicyFinding]] = []
        pending: list[tuple[int, Span, str]] = []
        for index, (query, response) in enumerate(pairs):
            findings = [self._rule_finding(hit.category, hit.sentence) for hit in
                        rule_hits(query or "", response or "", self.categories, self.limits)]
            results.append(findings)
            if use_classifier and self.classifier_enabled and response:
                pending += [(index, span, mask_quotes(span.text)) for span in sentences(response)]
        if pending:
            self._classify(pending, results)
        for findings in results:
            findings.sort(key=lambda f: (f.start, f.category))
        return results

    def _rule_finding(self, category: str, span: Span) -> PolicyFinding:
        return PolicyFinding(category=category, source="rule", score=1.0, start=span.start, end=span.end,
                             excerpt=span.text[:_CLAUSE_EXCERPT_CHARS], description=self.descriptions[category])

    def _classify(self, pending: list[tuple[int, Span, str]], results: list[list[PolicyFinding]]) -> None:
        model = self.classifier()
        probabilities = model.predict([text for _, _, text in pending])
        for category in model.classes:
            if category not in self.thresholds:
                continue
            scores = probabilities[category]
            for row in np.flatnonzero(scores >= self.thresholds[category]):
                index, span, _ = pending[int(row)]
                already = any(f.category == category and f.start == span.start for f in results[index])
                if not already:
                    results[index].append(PolicyFinding(
                        category=category, source="classifier", score=round(float(scores[row]), 4),
                        start=span.start, end=span.end, excerpt=span.text[:_CLAUSE_EXCERPT_CHARS],
                        description=self.descriptions[category]))


_default_checker: PolicyChecker | None = None
_default_lock = threading.Lock()


def default_checker() -> PolicyChecker:
    """The process-wide checker for the shipped policy (its classifier loads on first use)."""
    global _default_checker
    with _default_lock:
        if _default_checker is None:
            _default_checker = PolicyChecker()
        return _default_checker


def _checker_for(policy_rules: CompliancePolicy | PolicyChecker | None) -> PolicyChecker:
    if policy_rules is None:
        return default_checker()
    if isinstance(policy_rules, PolicyChecker):
        return policy_rules
    return PolicyChecker(policy_rules, classifier=default_checker()._classifier)


def check_response(query: str, response: str, policy_rules: CompliancePolicy | PolicyChecker | None = None,
                   use_classifier: bool = True) -> list[PolicyFinding]:
    """All policy findings for ``response`` to ``query`` (empty list = compliant).

    ``query`` keeps the customer's own data (their email or card number echoed back) from counting as
    another customer's, and supplies the purchase date a refund is judged against. ``policy_rules`` is
    a ``CompliancePolicy`` (or a prepared ``PolicyChecker``); None means the shipped profile.
    ``use_classifier=False`` runs the rules only.
    """
    if not response:
        return []
    return _checker_for(policy_rules).check(query or "", response, use_classifier=use_classifier)


def check_responses(pairs: Sequence[tuple[str, str]], policy_rules: CompliancePolicy | PolicyChecker | None = None,
                    use_classifier: bool = True) -> list[list[PolicyFinding]]:
    """``check_response`` for many (query, response) pairs, with one classifier batch for all of them."""
    return _checker_for(policy_rules).check_many(pairs, use_classifier=use_classifier)


def violated_rules(query_or_text: str, response: str | None = None) -> list[str]:
    """Sorted distinct categories broken by a response: the gateway's per-request fast path.

    A sorted list rather than a set: the gateway stores it in its JSON samples as it is.

    Call as ``violated_rules(text)`` or ``violated_rules(query, text)`` (the query lets a customer's own
    email or card number pass). Rules always; the classifier only if it is already loaded, so a live
    request never waits for MiniLM to load.
    """
    query, text = ("", query_or_text) if response is None else (query_or_text, response)
    if not text:
        return []
    checker = default_checker()
    return sorted({f.category for f in checker.check(query, text, use_classifier=checker.classifier_loaded)})


# The hand-off detector predates the classifier; its sentence split, clause breaks and negation words are
# unchanged. Its verbs were broadened for a bot that words hand-offs freely (someone brought in, a person
# who "will" take over); on the independent calibration set it finds 20 of the 21 held-out hand-off answers.
_ESCALATION = re.compile(
    r"\b(?:connect|connecting|transfer|transferring|hand(?:s|ed|ing)?|escalat\w*|put(?:ting)? you (?:through|in touch)|"
    r"get(?:ting)? you|pass(?:ing)? (?:you|this|it))\b[^.!?\n]{0,60}?\b(?:agent|representative|specialist|human|"
    r"person|team lead|manager|colleague)s?\b"
    # someone is brought in ("I'm bringing in a specialist", "let me loop in one of our agents", "routing you to")
    r"|\b(?:bring(?:ing)? in|loop(?:ing)? in|rop(?:e|ing) in|rout(?:e|ing) (?:you|this|your \w+)|refer(?:ring)? you)\b"
    r"[^.!?\n]{0,40}?\b(?:agent|representative|specialist|human|person|colleague|team)s?\b"
    # a person takes it from here ("an agent from our security team will look into it", "a colleague will call")
    r"|\b(?:an?|one of our|our|the)\s+(?:[\w&-]+\s+){0,3}(?:agent|representative|specialist|colleague|"
    r"team member|person|human)s?\b[^.!?\n]{0,60}?(?:\bwill|'ll|\bis going to|\bare going to)\b",
    re.IGNORECASE,
)
_ESCALATION_NEGATION = re.compile(
    r"\b(?:not|never|no|cannot|can't|can not|won't|unable|don't|do not|doesn't|does not|isn't|aren't|"
    r"couldn't|wouldn't|shouldn't|neither|nor|non-refundable|without)\b|\bn't\b",
    re.IGNORECASE,
)
_ESCALATION_CLAUSE_BREAK = re.compile(r"[,;:]|\bbut\b|\bhowever\b|\balthough\b|\bwhile\b", re.IGNORECASE)
_ESCALATION_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _escalation_negated(sentence: str, match_start: int) -> bool:
    clause = _ESCALATION_CLAUSE_BREAK.split(sentence[:match_start])[-1]
    return bool(_ESCALATION_NEGATION.search(clause))


def is_escalation(response: str) -> bool:
    """True when a response hands the customer off to a human ("I'll connect you with a support agent").

    Shared by the gateway's escalation counter and the judge, so both count hand-offs the same way.
    """
    if not response:
        return False
    return any(
        not _escalation_negated(sentence, match.start())
        for sentence in (s.strip() for s in _ESCALATION_SENTENCE_SPLIT.split(response))
        if sentence
        for match in _ESCALATION.finditer(sentence)
    )
