"""The judge a use gets under the policy (``policy.judging``): offline, the LLM judge, or both.

``judge_for(policy, use, settings)`` is the one place that reads the policy's judging section: the mode
for the use, and the LLM judge's repeats, agreement floor, rubric version and concurrency. Where the LLM
judge sits (URL, model, key, prices, cache directory) is deployment, not policy: it comes from the
``llm_judge`` Airflow connection (``hooks.llm_judge``) as :class:`LLMJudgeSettings`.

A mode that needs the LLM judge without a configured connection is an error at task start (fail
closed), not a silent fall-back to the offline judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_release.integrations.judge_cache import JudgeCache
from llm_release.integrations.llm_judge import LLMJudge
from llm_release.policy import JUDGE_USES, JudgeMode, JudgeUse, ReleasePolicy
from llm_release.suites.judge import Judgement
from llm_release.suites.judging import CombinedVerdict, LLMJudgement, combine


@dataclass(frozen=True)
class LLMJudgeSettings:
    """Where the LLM judge is and what it costs (from the Airflow connection; the key never printed)."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    price_per_1k_input: float = 0.0
    price_per_1k_output: float = 0.0
    cache_dir: str | None = None
    json_mode: bool = False
    max_retries: int = 2


@dataclass(frozen=True)
class JudgeSelection:
    """The judge setup of one use: its mode, the LLM judge (None in offline mode) and the agreement floor."""

    use: JudgeUse
    mode: JudgeMode
    llm: LLMJudge | None
    min_agreement: float

    def combine(self, offline: Judgement, llm: LLMJudgement | None,
                checker_violation: bool | None = None) -> CombinedVerdict:
        """The verdict of one answer under this use's mode (``suites.judging.combine``)."""
        return combine(offline, llm, self.mode, checker_violation=checker_violation,
                       min_agreement=self.min_agreement if self.mode != "offline" else None)


def judge_mode(policy: ReleasePolicy, use: JudgeUse) -> JudgeMode:
    """The policy's judge mode for ``use`` (offline_eval, shadow or live_sample)."""
    judging = policy.judging
    modes: dict[str, JudgeMode] = {
        "offline_eval": judging.offline_eval,
        "shadow": judging.shadow,
        "live_sample": judging.live_sample,
    }
    if use not in modes:
        raise ValueError(f"unknown judge use {use!r}; valid: {list(JUDGE_USES)}")
    return modes[use]


def build_llm_judge(policy: ReleasePolicy, settings: LLMJudgeSettings) -> LLMJudge:
    """An :class:`LLMJudge` run the way the policy says (repeats, agreement, rubric, concurrency)."""
    llm = policy.judging.llm
    return LLMJudge(
        base_url=settings.base_url,
        model=settings.model,
        api_key=settings.api_key,
        rubric_version=llm.rubric_version,
        repeats=llm.repeats,
        max_concurrency=llm.max_concurrency,
        timeout_s=settings.timeout_s,
        cache=JudgeCache.in_dir(settings.cache_dir) if settings.cache_dir else None,
        price_per_1k_input=settings.price_per_1k_input,
        price_per_1k_output=settings.price_per_1k_output,
        min_agreement=llm.min_agreement,
        max_retries=settings.max_retries,
        json_mode=settings.json_mode,
    )


def judge_for(policy: ReleasePolicy, use: JudgeUse, settings: LLMJudgeSettings | None) -> JudgeSelection:
    """The judge setup for ``use``; raises when the policy's mode needs an LLM judge and none is configured."""
    mode = judge_mode(policy, use)
    if mode == "offline":
        return JudgeSelection(use=use, mode=mode, llm=None, min_agreement=policy.judging.llm.min_agreement)
    if settings is None:
        raise ValueError(
            f"policy judging.{use} is {mode!r}, which needs the LLM judge, but no LLM judge connection is "
            "configured (an llm_judge Airflow connection); configure one or set the mode to 'offline'"
        )
    return JudgeSelection(use=use, mode=mode, llm=build_llm_judge(policy, settings),
                          min_agreement=policy.judging.llm.min_agreement)
