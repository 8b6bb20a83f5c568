"""Corpus text-overlap scores, computed by sacrebleu and rouge-score.

One implementation serves two entry points: the local ``evaluate`` modules in ``metrics/bleu`` and
``metrics/rouge`` (for anyone who wants the ``evaluate.load`` interface, e.g. MLflow) and the eval suite,
which calls these functions directly so it does not pay the multi-second ``evaluate`` import.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import sacrebleu
from rouge_score import rouge_scorer


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(predictions, str) or isinstance(references, str):
        raise TypeError("predictions and references must be sequences of strings, not a single string")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no predictions: a text score of an empty corpus is undefined")
    for name, seq in (("predictions", predictions), ("references", references)):
        for i, text in enumerate(seq):
            if not isinstance(text, str):
                raise TypeError(f"{name}[{i}] is {type(text).__name__}, expected str")


def corpus_bleu4(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 (sacrebleu defaults: 13a tokenizer, exponential smoothing), on a 0..100 scale."""
    _check_pairs(predictions, references)
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


@lru_cache(maxsize=1)
def _rouge_l_scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_f(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence, Porter-stemmed tokens) of one pair, 0..1."""
    return float(_rouge_l_scorer().score(reference, prediction)["rougeL"].fmeasure)


def corpus_rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure over the pairs, 0..1."""
    _check_pairs(predictions, references)
    return sum(rouge_l_f(p, r) for p, r in zip(predictions, references, strict=True)) / len(predictions)
