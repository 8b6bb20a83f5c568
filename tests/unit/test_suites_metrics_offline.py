"""The shipped ``evaluate`` metric modules load and compute with the network refused.

Marked ``integration`` only because it is slow: importing ``evaluate`` pulls in transformers and
takes ~10 s in a fresh interpreter on this machine. It talks to no server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


@pytest.mark.integration
def test_metric_modules_load_offline_in_a_fresh_process() -> None:
    """A fresh interpreter with every socket connect refused: evaluate.load must not touch the network."""
    script = textwrap.dedent(
        """
        import json, socket
        def refuse(*args, **kwargs):
            raise OSError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from llm_release.suites.metrics import load_metric
        bleu, rouge = load_metric("bleu"), load_metric("rouge")
        import evaluate
        same = ["Refunds are possible within 30 days of purchase."]
        print(json.dumps({
            "is_metric": isinstance(bleu, evaluate.Metric) and isinstance(rouge, evaluate.Metric),
            "bleu": bleu.compute(predictions=same, references=same)["bleu"],
            "rouge": rouge.compute(predictions=same, references=same)["rougeL"],
            "bleu_diff": bleu.compute(predictions=["nothing alike at all"], references=same)["bleu"],
        }))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["is_metric"]
    assert out["bleu"] == pytest.approx(100.0)
    assert out["rouge"] == pytest.approx(1.0)
    assert out["bleu_diff"] < 10
