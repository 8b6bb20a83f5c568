"""Which judge decides answer quality, per use, and how the LLM judge is run (issue 6, deliverable 3).

Three uses judge answers: the offline evaluation suites (``offline_eval``), the stage-3 shadow sample
(``shadow``) and the live canary sample (``live_sample``). Each picks a mode:

* ``offline`` - the project's deterministic judge alone (the default: no LLM endpoint exists by default,
  and a release must not depend on one it does not have);
* ``llm`` - the rubric LLM judge alone (an unreachable or unparsable judge is "inconclusive", never a pass);
* ``both`` - both judges; any disagreement on correct / hallucinated / policy is "inconclusive" and goes
  to a person.

A mode that needs the LLM judge fails the task at start when no judge connection is configured.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from llm_release.policy._base import StrictModel

JudgeMode = Literal["offline", "llm", "both"]
JudgeUse = Literal["offline_eval", "shadow", "live_sample"]
JUDGE_USES: tuple[str, ...] = ("offline_eval", "shadow", "live_sample")

RubricVersion = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]
"""Part of the judge cache key: bump it when the rubric prompt changes, so no stale verdict is reused."""


class LLMJudgePolicy(StrictModel):
    """How the LLM judge is asked; the endpoint, model and prices come from the Airflow connection."""

    repeats: int = Field(default=3, ge=1, le=15)
    """Times each item is judged (temperature 0); their agreement is reported with the verdict."""
    min_agreement: float = Field(default=0.66, ge=0.5, le=1.0)
    """Share of the repeats (unparsable ones count against it) that must agree with the majority verdict;
    below it the item is "inconclusive". 0.66 lets 2 of 3 agreeing repeats decide."""
    rubric_version: RubricVersion = "support-rubric-v1"
    max_concurrency: int = Field(default=4, ge=1, le=64)
    """Requests to the judge endpoint in flight at once."""


class JudgingPolicy(StrictModel):
    """The judge per use, and the LLM judge's settings."""

    offline_eval: JudgeMode = "offline"
    shadow: JudgeMode = "offline"
    live_sample: JudgeMode = "offline"
    llm: LLMJudgePolicy = LLMJudgePolicy()
