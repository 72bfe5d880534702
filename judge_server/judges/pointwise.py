"""Pointwise: a single-token score on a scale; reward = expected score mapped to [0, 1].

The expected score over the renormalised distribution is smoother and better calibrated than
parsing the argmax, and it never fails to parse.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Literal, Protocol

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.answer_guard import answer_free_judgment
from judge_server.judges.base import CheckedJudge
from judge_server.judges.items import JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import JudgeMode, with_checks
from judge_server.judges.verdicts import read_verdict
from judge_server.rubrics.reasoning import Reasoning
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.tokens import ScoreScale


class PointwiseSpec(RubricSpec):
    mode: Literal["pointwise"]
    scores: ScoreScale = Field(default_factory=ScoreScale)


class Scored(Protocol):
    """A rubric that reads a score off the judge: pointwise, and holistic rubric mode."""

    @property
    def scores(self) -> ScoreScale: ...
    @property
    def reasoning(self) -> Reasoning: ...
    @property
    def min_valid_mass(self) -> float: ...


async def score_on_scale(
    rubric: Scored, messages: list[ChatMessage], engine: JudgeEngine
) -> Judgment:
    """Read the rubric's score tokens after ``messages``; shared by pointwise and holistic."""
    scale = rubric.scores
    read = await read_verdict(
        engine,
        messages,
        _score_labels(scale.min, scale.max),
        reasoning=rubric.reasoning,
        default_verdict_prompt=(
            f"Now reply with only the final score, a single number from {scale.min} to {scale.max}."
        ),
        min_valid_mass=rubric.min_valid_mass,
    )
    # The distribution's labels are the scale's, in order (``_score_labels``).
    expected = sum(map(operator.mul, range(scale.min, scale.max + 1), read.distribution.values()))
    reward = (expected - scale.min) / (scale.max - scale.min)
    details: dict[str, Any] = {
        "expected_score": expected,
        "argmax": int(read.argmax),
        "distribution": read.distribution,
        "valid_mass": read.valid_mass,
    }
    if read.reasoning is not None:
        details["reasoning"] = read.reasoning
    return Judgment(reward=min(1.0, max(0.0, reward)), details=details)


@functools.lru_cache(maxsize=64)
def _score_labels(low: int, high: int) -> dict[str, tuple[str]]:
    """A scale's labels, each its own one surface form (read-only: shared by every item)."""
    return {str(s): (str(s),) for s in range(low, high + 1)}


class PointwiseJudge(CheckedJudge[PointwiseSpec]):
    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        if (blocked := await answer_free_judgment(self.rubric, item, self.checks)) is not None:
            return blocked  # the bottom of the scale
        return await score_on_scale(self.rubric, judge_messages(self.rubric, item), engine)


MODE = JudgeMode(PointwiseSpec, with_checks(PointwiseJudge))
