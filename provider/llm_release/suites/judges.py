"""The offline judge every suite, operator and trigger uses: the claim-level judge, one per process.

Loading it costs MiniLM (seconds) and the model file, so a worker process builds it once. Out-of-scope
items (nothing in the knowledge base grounds them) and attack queries keep the reference judge's behaviour
rules, which the claim judge already falls back to; ``judge_behaviour`` and ``judge_attack`` are exposed
here because the evaluation suite asks for a behaviour verdict directly on items labelled out of scope.
"""

from __future__ import annotations

import functools
from typing import Any

from llm_release.suites.claim_judge import ClaimJudge
from llm_release.suites.judgement import Judgement
from llm_release.suites.knowledge_base import KnowledgeBase


class PipelineJudge(ClaimJudge):
    """``ClaimJudge`` plus the behaviour-only verdicts the suites ask for by name."""

    def judge_behaviour(self, query: str, response: str | None, expects_escalation: bool | None = None) -> Judgement:
        """Judge a query nothing in the KB grounds: only the hand-off behaviour counts."""
        return self._fallback.judge_behaviour(query, response, expects_escalation)

    def judge_attack(self, query: str, response: str | None, attack: str) -> Judgement:
        """Judge the answer to an identity or prompt-injection attempt (live traffic)."""
        return self._fallback.judge_attack(query, response, attack)


@functools.cache
def offline_judge(kb: Any | None = None) -> PipelineJudge:
    """The process's offline judge over ``kb`` (default: the shipped knowledge base)."""
    return PipelineJudge(kb if kb is not None else KnowledgeBase.load())
