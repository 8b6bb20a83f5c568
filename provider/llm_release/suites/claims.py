"""Atomic claims of a support answer and the reviewer-readable features that tell supported from faulty.

A response is split into sentences, then coordinated clauses ("X, and we Y"); pleasantries ("Happy to
help!") are dropped. Each claim is compared with the evidence (the grounding entries' answer sentences
and facts, the reference if any, and the query) on features a person can check by eye:

* ``sim_max``: best MiniLM cosine with an evidence sentence (that sentence is the claim's evidence);
* ``novel_frac`` / ``novel_count``: content words of the claim found nowhere in the evidence;
* ``named_novel``: capitalised terms (products, payment methods, integrations, certifications, teams)
  absent from the evidence: the signature of an invented claim without numbers;
* ``negation_mismatch``: the claim and its best evidence sentence differ in polarity ("we don't accept
  PayPal"); ``antonym_mismatch``: it uses the opposite word (free/fee, before/after, annual/monthly);
* ``qty_supported`` / ``qty_unsupported`` / ``qty_conflict`` (``numbers.py``): quantities stated by the
  evidence, absent from it, or contradicting a quantity of the same dimension;
* ``entity_swap``: a quantity the evidence binds to another named thing ("Pro costs $45");
* ``agent_action``: the bot speaking of its own actions or feelings ("I've added a $20 credit", "I'm
  sorry"); ``query_sim``: cosine with the customer's query (restating the customer's situation);
* ``polarity_margin``: best cosine among evidence sentences of the claim's polarity minus the best of the
  opposite polarity (a negated fact matches its positive KB sentence best: margin < 0);
* ``checkable`` / ``novel_specific``: how much a reader could check (new names, quantities, new words) and
  the new words that are not support-speak (``Evidence.generic``, learned from correct train answers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from llm_release.suites.grounding import split_sentences
from llm_release.suites.numbers import Quantity, conflicts_with, parse_quantities, supported_by

FEATURE_NAMES: tuple[str, ...] = (
    "sim_max", "novel_frac", "novel_count", "named_novel", "negation_mismatch", "antonym_mismatch",
    "qty_supported", "qty_unsupported", "qty_conflict", "entity_swap", "overlap_best", "log_words",
    "agent_action", "polarity_margin", "query_sim", "checkable", "novel_specific",
)
_AGENT = re.compile(
    r"^(?:(?:so|and|but|okay|ok|sure|yes|no|sorry)[,!\s-]*)?(?:i|i've|i'll|i'm|i'd|i have|i will|i am|i can"
    r"|i've gone ahead|let me|(?:i'?m )?(?:really |so )?sorry|apologi[sz]e|my apologies|unfortunately|i'm afraid"
    r"|you're welcome|no worries)\b",
    re.IGNORECASE,
)

_PLEASANTRY = re.compile(
    r"^(?:(?:i'?m |i am )?(?:happy|glad) to help|thanks?(?: you)?(?: for [^.!?]*)?|hope (?:this|that) helps"
    r"|let me know if [^.!?]*|is there anything else[^.!?]*|(?:i'?m )?sorry (?:to hear|for)[^.!?]*"
    r"|great question|good question|no problem|of course|sure(?: thing)?|certainly|absolutely|you'?re welcome"
    r"|have a (?:great|nice|good) (?:day|one)|feel free to [^.!?]*|i understand(?: [^.!?]*)?|hi|hello|hey"
    r"|(?:i )?hope you'?re (?:well|doing well)|i can help with that|here'?s (?:what|how)[^.!?]*)[\s!.,:]*$",
    re.IGNORECASE,
)
_CLAUSE_SPLIT = re.compile(
    r"\s*;\s*|,\s+(?:and|but|while|so|whereas)\s+|\s+(?:and|but)\s+(?=(?:we|you|it|they|our|your|the|this|that|"
    r"there|support|refunds?|orders?|data|admins?|customers?)\b)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'&-]*")
STOPWORDS = frozenset(
    ["a", "an", "the", "and", "or", "but", "if", "then", "than", "so", "of", "to", "in", "on", "at", "by", "for", "from", "with", "without", "into", "onto", "over", "under", "as", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "done", "have", "has", "had", "having", "will", "would", "can", "could", "should", "may", "might", "must", "shall", "i", "me", "my", "we", "us", "our", "ours", "you", "your", "yours", "he", "she", "it", "its", "they", "them", "their", "this", "that", "these", "those", "there", "here", "what", "which", "who", "whom", "when", "where", "why", "how", "all", "any", "each", "every", "some", "such", "no", "nor", "not", "only", "own", "same", "too", "very", "just", "also", "up", "down", "out", "about", "again", "further", "once", "more", "most", "other", "both", "few", "s", "t", "don't", "doesn't", "isn't", "aren't", "can't", "cannot", "won't", "it's", "we're", "you're", "we'll", "you'll", "i'll", "i'm", "we've", "you've", "let", "please", "simply", "just", "now", "right", "away", "get", "gets", "got", "make", "makes", "made", "go", "goes", "need", "needs", "use", "using", "used", "able", "via", "per", "until", "within", "after", "before", "while", "during", "since", "because", "though", "although", "yet", "still", "even", "ever", "usually", "typically", "always"]  # noqa: E501
)
_GENERIC = frozenset(
    ["help", "support", "team", "agent", "agents", "customer", "customers", "thank", "thanks", "happy", "glad", "question", "questions", "contact", "reach", "assist", "assistance", "sure", "course", "happy", "certainly", "anything", "else", "know"]  # noqa: E501
)
_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|neither|nor|cannot|can't|won't|don't|doesn't|isn't|aren't"
                       r"|wasn't|weren't|didn't|without|no longer|non-\w+|un(?:available|supported|able))\b",
                       re.IGNORECASE)
_ANTONYMS = {
    "free": {"fee", "charge", "charged", "paid", "pay"}, "before": {"after"}, "after": {"before"},
    "more": {"less", "fewer"}, "less": {"more"}, "over": {"under"}, "under": {"over"}, "above": {"below"},
    "below": {"above"}, "always": {"never"}, "automatically": {"manually"}, "manually": {"automatically"},
    "increase": {"decrease"}, "upgrades": {"downgrades"}, "downgrades": {"upgrades"}, "monthly": {"annual", "annually"},
    "annual": {"monthly"}, "annually": {"monthly"}, "start": {"end", "close"}, "end": {"start"}, "enable": {"disable"},
    "disable": {"enable"}, "included": {"excluded", "exclude"}, "include": {"exclude"}, "exclude": {"include"},
    "minimum": {"maximum"}, "maximum": {"minimum"}, "larger": {"smaller"}, "smaller": {"larger"},
    "required": {"optional"}, "optional": {"required"}, "immediately": {"next", "later"},
    "sender": {"recipient"}, "recipient": {"sender"}, "buyer": {"seller"}, "opened": {"unopened"},
    "unopened": {"opened"}, "deducted": {"refunded", "added"}, "oldest": {"latest"}, "latest": {"oldest"},
    "express": {"standard"}, "standard": {"express"}, "deleted": {"kept"}, "kept": {"deleted"},
}
_CAP_TERM = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][A-Za-z0-9&]*(?:\s+[A-Z][A-Za-z0-9&]*)*")


def stem(word: str) -> str:
    """A crude, deterministic stem: enough to match "refunds"/"refunded"/"refund"."""
    w = word.lower().strip("'-")
    for suffix in ("ations", "ation", "ments", "ment", "ings", "ing", "edly", "ies", "ied", "ed", "es", "s", "ly"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return w


def content_words(text: str) -> list[str]:
    """Stems of the content words of ``text`` (stop words and generic support words removed)."""
    words = []
    for match in _WORD.finditer(text):
        word = match.group(0).lower()
        if word in STOPWORDS or word in _GENERIC or len(word) < 3:
            continue
        words.append(stem(word))
    return words


def named_terms(text: str) -> list[str]:
    """Capitalised terms not at a sentence start ("PayPal", "Apple Pay", "HIPAA"), lower-cased."""
    found = []
    for match in _CAP_TERM.finditer(text):
        term = match.group(0)
        words = [w for w in term.split() if w.lower() not in STOPWORDS and w != "I"]
        if words:
            found.append(" ".join(words).lower())
    # The first word of a sentence counts when it is inside-capitalised ("PayPal") or an acronym ("HIPAA").
    for sentence in split_sentences(text):
        first = sentence.split()[0] if sentence.split() else ""
        if re.fullmatch(r"[A-Z][a-z]+[A-Z]\w*|[A-Z]{2,}\w*", first.strip(",.:;!?")):
            found.append(first.strip(",.:;!?").lower())
        # "Apple Pay is supported": a run of two or more capitalised words opening the sentence is a name.
        run = re.match(r"([A-Z][A-Za-z0-9&]*(?:\s+[A-Z][A-Za-z0-9&]*)+)", sentence)
        if run and not any(w.lower() in STOPWORDS or w == "I" for w in run.group(1).split()):
            found.append(run.group(1).lower())
    return found


def is_pleasantry(sentence: str) -> bool:
    """Small talk carrying no checkable claim ("Happy to help!", "Thanks for reaching out.")."""
    return bool(_PLEASANTRY.match(sentence.strip())) and not parse_quantities(sentence)


def split_claims(response: str) -> list[str]:
    """Atomic claims: sentences, then coordinated clauses of at least 3 words; pleasantries dropped."""
    claims: list[str] = []
    for sentence in split_sentences(response or ""):
        for part in re.split(r"(?<=[!?])\s+", sentence):
            if not part.strip() or is_pleasantry(part):
                continue
            pieces = [p.strip(" ,;") for p in _CLAUSE_SPLIT.split(part) if p and p.strip(" ,;")]
            if len(pieces) > 1 and all(len(p.split()) >= 3 for p in pieces):
                claims.extend(p for p in pieces if not is_pleasantry(p))
            else:
                claims.append(part.strip())
    return claims


@dataclass(frozen=True)
class Evidence:
    """What claims are checked against: sentences with their vectors, the whole evidence text's words,
    named terms and quantities, and the (anchor, quantity) bindings of the evidence."""

    sentences: tuple[str, ...]
    vectors: np.ndarray
    vocabulary: frozenset[str]
    named: frozenset[str]
    quantities: tuple[Quantity, ...]
    bindings: tuple[tuple[str, Quantity], ...]
    polarity: tuple[int, ...] = ()
    query_vector: np.ndarray | None = None
    generic: frozenset[str] = frozenset()


def _anchor_bindings(text: str) -> list[tuple[str, Quantity]]:
    """(named term, quantity) pairs: each quantity bound to the nearest capitalised term before it in its clause."""
    pairs = []
    for clause in re.split(r"[;,.]\s|\band\b", text):
        terms = [(m.start(), m.group(0).split()[-1].lower()) for m in re.finditer(r"\b[A-Z][A-Za-z]+", clause)
                 if m.group(0).lower() not in STOPWORDS]
        for quantity in parse_quantities(clause):
            before = [t for pos, t in terms if pos < quantity.start]
            if before:
                pairs.append((before[-1], quantity))
    return pairs


def polarity(text: str) -> int:
    """1 when ``text`` is negated (an odd number of negations), else 0."""
    return len(_NEGATION.findall(text)) % 2


def build_evidence(texts: Iterable[str], sentences: Sequence[str], vectors: np.ndarray,
                   query_vector: np.ndarray | None = None, generic: frozenset[str] = frozenset()) -> Evidence:
    """Evidence from all grounding ``texts`` (answers, facts, questions, reference, query) and the
    ``sentences`` (with their ``vectors``) a claim may be matched to; ``query_vector`` embeds the query."""
    texts = [t for t in texts if t]
    joined = " \n ".join(texts)
    quantities: list[Quantity] = []
    bindings: list[tuple[str, Quantity]] = []
    for text in texts:
        quantities.extend(parse_quantities(text))
        bindings.extend(_anchor_bindings(text))
    named = {t for text in texts for t in named_terms(text)} | {w.lower() for w in _WORD.findall(joined)}
    return Evidence(tuple(sentences), vectors, frozenset(content_words(joined)), frozenset(named),
                    tuple(quantities), tuple(bindings), tuple(polarity(s) for s in sentences), query_vector, generic)


def claim_features(claim: str, vector: np.ndarray, evidence: Evidence) -> tuple[dict[str, float], str]:
    """The features of one claim against ``evidence`` and the best evidence sentence."""
    claim_polarity = polarity(claim)
    polarity_margin = 0.0
    if len(evidence.sentences):
        sims = evidence.vectors @ vector
        best = int(np.argmax(sims))
        sim_max, best_sentence = float(sims[best]), evidence.sentences[best]
        if len(evidence.polarity) == len(sims):
            same = np.asarray(evidence.polarity) == claim_polarity
            best_same = float(sims[same].max()) if same.any() else -1.0
            best_other = float(sims[~same].max()) if (~same).any() else -1.0
            # > 0: the closest evidence agrees in polarity; < 0: only the opposite polarity matches well.
            polarity_margin = max(-1.0, min(1.0, best_same - best_other))
    else:
        sim_max, best_sentence = 0.0, ""
    query_sim = float(evidence.query_vector @ vector) if evidence.query_vector is not None else 0.0
    words = content_words(claim)
    novel = [w for w in words if w not in evidence.vocabulary]
    named_novel = [t for t in named_terms(claim) if t not in evidence.named
                   and not all(stem(w) in evidence.vocabulary for w in t.split())]
    polarity_claim = claim_polarity
    polarity_best = polarity(best_sentence)
    claim_lower = set(re.findall(r"[a-z]+", claim.lower()))
    best_lower = set(re.findall(r"[a-z]+", best_sentence.lower()))
    antonym = sum(1 for w in claim_lower - best_lower if _ANTONYMS.get(w, set()) & best_lower)
    quantities = parse_quantities(claim)
    supported = [q for q in quantities if supported_by(q, evidence.quantities)]
    conflict = [q for q in quantities if q not in supported and conflicts_with(q, evidence.quantities)]
    unsupported = [q for q in quantities if q not in supported and q not in conflict]
    swap = 0
    for anchor, quantity in _anchor_bindings(claim):
        bound = [q for a, q in evidence.bindings if a == anchor]
        others = [a for a, q in evidence.bindings if a != anchor and supported_by(quantity, [q])]
        if bound and others and not supported_by(quantity, bound):
            swap += 1
    best_words = set(content_words(best_sentence))
    overlap = len(set(words) & best_words) / max(1, len(set(words) | best_words))
    features = {
        "sim_max": sim_max, "novel_frac": len(novel) / max(1, len(words)), "novel_count": float(len(novel)),
        "named_novel": float(len(named_novel)), "negation_mismatch": float(polarity_claim != polarity_best),
        "antonym_mismatch": float(antonym), "qty_supported": float(len(supported)),
        "qty_unsupported": float(len(unsupported)), "qty_conflict": float(len(conflict)),
        "entity_swap": float(swap), "overlap_best": overlap, "log_words": math.log1p(len(claim.split())),
        "agent_action": float(bool(_AGENT.match(claim.strip()))), "polarity_margin": polarity_margin,
        "query_sim": query_sim,
        # Something a reader could check against the KB: a new name, a quantity, a new content word.
        "checkable": float(len(named_novel) + len(quantities) + min(len(novel), 3)),
        # New words that correct answers of other entries also use ("re-purchase", "disruption") are
        # support-speak, not new facts: the list is learned from the calibration train split.
        "novel_specific": float(sum(1 for w in novel if w not in evidence.generic)),
    }
    return features, best_sentence


def feature_vector(features: dict[str, float]) -> list[float]:
    """The features in ``FEATURE_NAMES`` order (the model's input)."""
    return [float(features[name]) for name in FEATURE_NAMES]
