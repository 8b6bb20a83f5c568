"""Local ``evaluate`` module: corpus BLEU-4 via sacrebleu (the hub's ``bleu`` script cannot be fetched here).

Load it with ``llm_release.suites.metrics.load_metric("bleu")`` or ``evaluate.load(<this directory>)``.
"""

import datasets
import evaluate

from llm_release.suites.metrics.textscores import corpus_bleu4

_DESCRIPTION = "Corpus BLEU-4 of the predictions against one reference each (sacrebleu, 13a tokenizer)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of str, the model answers.
    references: list of str, one reference answer per prediction.
Returns:
    bleu: float, corpus BLEU-4 on a 0..100 scale (100 = identical text).
"""
_CITATION = "Post, M. (2018). A Call for Clarity in Reporting BLEU Scores. WMT."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return {"bleu": corpus_bleu4(predictions, references)}
