"""Local ``evaluate`` module: mean ROUGE-L F-measure via rouge-score (the hub script cannot be fetched here).

Load it with ``llm_release.suites.metrics.load_metric("rouge")`` or ``evaluate.load(<this directory>)``.
"""

import datasets
import evaluate

from llm_release.suites.metrics.textscores import corpus_rouge_l

_DESCRIPTION = "Mean ROUGE-L F-measure of the predictions against one reference each (stemmed tokens)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of str, the model answers.
    references: list of str, one reference answer per prediction.
Returns:
    rougeL: float, mean ROUGE-L F-measure on a 0..1 scale (1 = identical text).
"""
_CITATION = "Lin, C.-Y. (2004). ROUGE: A Package for Automatic Evaluation of Summaries. ACL workshop."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
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
        return {"rougeL": corpus_rouge_l(predictions, references)}
