"""Verify mode: is the response's final answer equivalent to the reference? (RLVR)

Deterministic first: extract the final answer; a response with no answer in it is incorrect,
full stop (content-free "master key" responses such as ":" fool LLM verifiers, never this). For
numeric and mathematical references the extracted answer is compared exactly (numbers, then
math-verify). Only free-form text references that are not an exact match go on: past the
content-free guard (``answer_guard``) to the LLM verdict, which sees the reference and the
response.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from judge_server.engines.base import JudgeEngine
from judge_server.judges.answer_guard import answer_free_judgment
from judge_server.judges.answers import check_answer
from judge_server.judges.base import CheckedJudge, Judge
from judge_server.judges.items import InvalidItemError, JudgeItem, Judgment
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import BuildContext, JudgeMode
from judge_server.judges.verdicts import read_yes_no
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.tokens import VerdictTokens


class VerifySpec(RubricSpec):
    required_fields: ClassVar[tuple[str, ...]] = ("reference",)

    mode: Literal["verify"]
    verdict: VerdictTokens = Field(
        default_factory=VerdictTokens, description="The LLM verdict on free-form references."
    )


class VerifyJudge(CheckedJudge[VerifySpec]):
    def validate(self, item: JudgeItem) -> None:
        if not (item.reference or "").strip():
            raise InvalidItemError("verify needs a reference answer")

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        assert item.reference is not None
        # In a worker with a deadline: math-verify can run for seconds, in C where nothing stops
        # it but killing the process.
        check = await self.checks.run(
            check_answer, item.response, item.reference, what="the answer check"
        )
        details: dict[str, Any] = {
            "has_answer": check.has_answer,
            "extracted": check.extracted,
            "rule": check.rule,
            "reference_kind": check.kind,
            "method": check.method,
        }
        if check.equivalent is not None:
            return Judgment(reward=1.0 if check.equivalent else 0.0, details=details)
        # The guard only stands before the LLM verdict: an exact check that decided ("10^3" for
        # 1000, "\frac12" for 0.5) knows better than a test of words.
        if (blocked := await answer_free_judgment(self.rubric, item, self.checks)) is not None:
            return blocked
        read = await read_yes_no(self.rubric, judge_messages(self.rubric, item), engine)
        details.update(
            method="llm_verdict", p_yes=read.distribution["yes"], valid_mass=read.valid_mass
        )
        return Judgment(reward=read.distribution["yes"], details=details)


def build(rubric: VerifySpec, context: BuildContext) -> Judge:
    return VerifyJudge(rubric, context.checks)


MODE = JudgeMode(VerifySpec, build)
