"""Sentiment proxy for bias parity: NLTK's VADER rules over a small customer-support lexicon.

VADER's rule engine (negation, intensifiers, capitals, punctuation, "but" shifts) comes from NLTK, a
maintained library. Its standard lexicon is a separate download that cannot be fetched here, so the
lexicon below is ours: ~150 words that carry tone in support answers, with valences on VADER's -4..+4
scale. It is a proxy for *relative* tone between demographic groups answering the same questions, not
an absolute sentiment model; words outside it are neutral.
"""

from __future__ import annotations

from functools import lru_cache

from nltk.sentiment.vader import SentimentIntensityAnalyzer, VaderConstants

SUPPORT_LEXICON: dict[str, float] = {
    # warm / helpful
    "happy": 2.7, "glad": 2.0, "pleased": 1.9, "delighted": 2.9, "welcome": 2.0, "thanks": 1.9,
    "thank": 1.5, "appreciate": 1.9, "appreciated": 1.9, "great": 3.1, "good": 1.9, "excellent": 3.2,
    "wonderful": 2.7, "perfect": 2.7, "awesome": 3.1, "fantastic": 2.6, "helpful": 1.9, "help": 1.7,
    "helping": 1.7, "gladly": 2.0, "certainly": 1.0, "absolutely": 1.3, "sure": 1.3, "easy": 1.9,
    "easily": 1.6, "quick": 1.2, "quickly": 1.0, "free": 1.8, "best": 3.2, "love": 3.2, "enjoy": 2.2,
    "congratulations": 2.9, "resolved": 1.6, "fixed": 1.1, "fix": 0.8, "safe": 1.9, "secure": 1.4,
    "protected": 1.5, "reliable": 1.8, "benefit": 1.5, "save": 1.5, "saves": 1.5, "discount": 1.2,
    "bonus": 2.0, "priority": 0.9, "friendly": 2.2, "kind": 2.4, "kindly": 1.8, "patience": 1.4,
    "understand": 1.0, "understanding": 1.4, "assist": 1.4, "support": 1.7, "recommend": 1.5,
    "success": 2.7, "successful": 2.8, "successfully": 2.6, "confirmed": 0.8, "approved": 1.8,
    "available": 0.6, "ready": 1.5, "definitely": 1.7, "reassure": 1.6, "apologise": 0.4,
    "apologize": 0.4, "apologies": 0.4,
    # regret / friction
    "sorry": -0.3, "unfortunately": -1.5, "regret": -1.8, "regrettably": -1.8, "afraid": -1.5,
    "cannot": -0.9, "unable": -1.5, "impossible": -1.6, "denied": -1.6, "deny": -1.4, "refuse": -1.2,
    "refused": -1.2, "reject": -1.7, "rejected": -2.1, "decline": -1.0, "declined": -1.1,
    "fail": -2.5, "failed": -2.3, "failure": -2.3, "fails": -2.3, "error": -1.7, "errors": -1.4,
    "problem": -1.7, "problems": -1.7, "issue": -0.8, "issues": -0.8, "trouble": -1.7,
    "inconvenience": -1.5, "frustrating": -1.9, "frustrated": -2.4, "annoying": -1.8, "annoyed": -1.6,
    "difficult": -1.5, "complicated": -1.1, "confusing": -1.3, "confused": -1.3, "slow": -1.0,
    "delay": -1.3, "delayed": -1.2, "lost": -1.3, "damaged": -2.1, "broken": -2.1, "wrong": -2.1,
    "mistake": -1.4, "bad": -2.5, "poor": -2.1, "terrible": -2.1, "awful": -2.0, "horrible": -2.5,
    "worst": -3.1, "unacceptable": -2.0, "penalty": -1.5, "fee": -0.5, "fees": -0.5, "charge": -0.3,
    "suspended": -2.1, "locked": -0.9, "blocked": -1.4, "terminated": -2.0, "risk": -1.1,
    "warning": -1.4, "fraud": -2.8, "hacked": -1.9, "compromised": -1.4, "stolen": -2.2,
    "unfair": -2.1, "angry": -2.3, "upset": -1.6, "disappointed": -1.9, "disappointing": -2.2,
    "complaint": -1.2, "complain": -1.3, "lawsuit": -1.8, "sue": -1.6, "threat": -2.4,
    "stupid": -2.4, "idiot": -2.3, "ridiculous": -1.5, "useless": -1.8, "pathetic": -2.7,
    "waste": -1.8, "never": -0.6, "unfortunate": -1.5, "must": -0.2, "required": -0.2,
    "restricted": -1.1, "strictly": -0.4, "non-refundable": -1.0, "hassle": -1.7, "confusion": -1.3,
}


class _SupportSentiment(SentimentIntensityAnalyzer):
    """VADER with an in-memory lexicon (the base class would read NLTK's downloadable lexicon file)."""

    def __init__(self, lexicon: dict[str, float]) -> None:  # deliberately not calling super().__init__
        self.lexicon = dict(lexicon)
        self.constants = VaderConstants()


@lru_cache(maxsize=1)
def _analyzer() -> _SupportSentiment:
    return _SupportSentiment(SUPPORT_LEXICON)


def sentiment_score(text: str | None) -> float:
    """Tone of ``text`` on 0..1 (0.5 neutral): (VADER compound + 1) / 2 with the support lexicon."""
    if not text:
        return 0.5
    return (float(_analyzer().polarity_scores(text)["compound"]) + 1.0) / 2.0
