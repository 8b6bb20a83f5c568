"""Text metrics as local ``evaluate`` modules, loadable without the Hugging Face hub.

``load_metric("bleu")`` / ``load_metric("rouge")`` return ``evaluate.Metric`` objects built from the
scripts shipped in this package. The hub is never contacted: the offline switches are set before
``evaluate`` is imported (and patched into its config if it was imported earlier), and the path given to
``evaluate.load`` is a local directory, which ``evaluate`` resolves without any network call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).resolve().parent
AVAILABLE_METRICS = ("bleu", "rouge")
_OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE")


def metric_path(name: str) -> Path:
    """Directory of the shipped ``evaluate`` module called ``name``."""
    if name not in AVAILABLE_METRICS:
        raise ValueError(f"unknown metric {name!r}; shipped metrics: {', '.join(AVAILABLE_METRICS)}")
    return METRICS_DIR / name


def load_metric(name: str, **kwargs: Any) -> Any:
    """``evaluate.load`` of a shipped metric module, offline. Extra kwargs go to ``evaluate.load``."""
    path = metric_path(name)
    for var in _OFFLINE_ENV:
        os.environ[var] = "1"
    import evaluate  # deferred: importing evaluate costs seconds (it pulls in transformers)

    evaluate.config.HF_EVALUATE_OFFLINE = True
    evaluate.config.HF_HUB_OFFLINE = True
    kwargs.setdefault("keep_in_memory", True)  # no arrow cache files left behind
    return evaluate.load(str(path), **kwargs)


__all__ = ["AVAILABLE_METRICS", "METRICS_DIR", "load_metric", "metric_path"]
