"""Verdict: reward = P(yes) for a yes/no question, optionally against a reference answer.

Against a reference, a response with no answer in it gets 0 before the judge sees it
(``answer_guard``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from judge_server.engines.base import JudgeEngine
from judge_server.judges.answer_guard import answer_free_judgment
from judge_server.judges.base import CheckedJudge
from judge_server.judges.items import JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import JudgeMode, with_checks
from judge_server.judges.verdicts import read_yes_no
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.tokens import VerdictTokens


class VerdictSpec(RubricSpec):
    mode: Literal["verdict"]
    verdict: VerdictTokens = Field(default_factory=VerdictTokens)


class VerdictJudge(CheckedJudge[VerdictSpec]):
    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        if (blocked := await answer_free_judgment(self.rubric, item, self.checks)) is not None:
            return blocked
        read = await read_yes_no(self.rubric, judge_messages(self.rubric, item), engine)
        p_yes = read.distribution["yes"]
        details: dict[str, object] = {
            "p_yes": p_yes,
            "verdict": read.argmax,
            "valid_mass": read.valid_mass,
        }
        if read.reasoning is not None:
            details["reasoning"] = read.reasoning
        return Judgment(reward=p_yes, details=details)


MODE = JudgeMode(VerdictSpec, with_checks(VerdictJudge))
