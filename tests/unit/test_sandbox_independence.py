"""The sandbox never produces a calibration sentence (DESIGN: measurement honesty).

The judge and the policy checker are scored on the calibration set; the sandbox is what the pipeline's
end-to-end runs judge. If a calibration sentence could come out of the sandbox, a checker tuned on one would
be flattered on the other. Both sides are split into sentences the same way and compared after folding
case and whitespace; a shared sentence of four words or more fails (shorter ones are greetings and
hand-off boilerplate such as "Thanks!" that any two writers share).
"""

from __future__ import annotations

import re

from llm_release.sandbox.bot import producible_sentences
from llm_release.sandbox.fault_library import split_sentences
from llm_release.suites.calibration import load_calibration

MIN_WORDS = 4


def _fold(sentence: str) -> str:
    return re.sub(r"\s+", " ", sentence.strip().lower()).rstrip(".!?")


def test_no_calibration_sentence_can_come_out_of_the_sandbox() -> None:
    sandbox = {_fold(s) for s in producible_sentences()}
    assert len(sandbox) > 500, "producible_sentences() looks incomplete"
    rows = load_calibration()
    assert len(rows) >= 600
    shared = sorted(
        {
            (row.id, folded)
            for row in rows
            for sentence in split_sentences(row.response)
            if len((folded := _fold(sentence)).split()) >= MIN_WORDS and folded in sandbox
        }
    )
    assert not shared, f"calibration sentences the sandbox can produce: {shared[:10]}"


def test_the_comparison_would_see_a_shared_sentence() -> None:
    """The check is not vacuous: a sandbox sentence planted in a response is found after splitting."""
    sentence = sorted(s for s in producible_sentences() if len(s.split()) >= MIN_WORDS)[0]
    planted = f"Thanks for asking. {sentence} Anything else?"
    sandbox = {_fold(s) for s in producible_sentences()}
    assert any(_fold(s) in sandbox for s in split_sentences(planted) if len(s.split()) >= MIN_WORDS)
