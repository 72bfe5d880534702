"""Rubric mode: one yes/no verdict per criterion, aggregated into a reward.

Every criterion prompt repeats the same conversation and response and differs only at the end
(the criterion comes last), so vLLM's prefix cache computes the long shared part once. The first
criterion runs alone to put that prefix in the cache; the rest then run concurrently and hit it.

``holistic`` puts all criteria into one pointwise call instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.answer_guard import answer_free_judgment
from judge_server.judges.base import Judge
from judge_server.judges.items import JudgeItem, Judgment
from judge_server.judges.pointwise import score_on_scale
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import JudgeMode, rubric_only
from judge_server.judges.verdicts import VerdictRead, read_yes_no
from judge_server.rubrics.aggregation import Aggregation
from judge_server.rubrics.criteria import Criterion
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.tokens import ScoreScale, VerdictTokens


class RubricModeSpec(RubricSpec):
    template_fields: ClassVar[frozenset[str]] = frozenset({"criterion", "criteria"})
    # The criterion differs per call: in the system message it would break the shared prefix.
    system_fields: ClassVar[frozenset[str]] = frozenset({"criteria"})

    mode: Literal["rubric"]
    verdict: VerdictTokens = Field(default_factory=VerdictTokens)
    scores: ScoreScale = Field(
        default_factory=ScoreScale, description="holistic aggregation: the score scale."
    )
    # Each criterion is an engine call per item: bounded for every rubric (inline ones tighter,
    # JUDGE_MAX_INLINE_CRITERIA).
    criteria: tuple[Criterion, ...] = Field(
        default=(), max_length=1024, description="What to check."
    )
    aggregation: Aggregation = Field(default_factory=Aggregation)

    def check_mode(self) -> None:
        assert self.template is not None, "checked before the mode's own checks"
        if not self.criteria:
            raise ValueError("rubric mode needs at least one criterion")
        ids = [c.id for c in self.criteria]
        if len(set(ids)) != len(ids):
            raise ValueError(
                f"duplicate criterion ids: {sorted({i for i in ids if ids.count(i) > 1})}"
            )
        if not any(c.weight > 0 for c in self.criteria):
            raise ValueError("rubric mode needs at least one criterion with a positive weight")
        method = self.aggregation.method
        if method == "weighted":
            at = self.template.find("{criterion}")
            if at < 0:
                raise ValueError("weighted rubric mode needs {criterion} in the template")
            # The shared part (conversation, response) must come first so vLLM's prefix cache
            # computes it once for all criteria.
            for field in ("{prompt}", "{response}", "{reference}"):
                if self.template.find(field) > at:
                    raise ValueError(f"{field} must come before {{criterion}} in the template")
        elif method == "holistic":
            if "{criteria}" not in self.template:
                raise ValueError("holistic aggregation needs {criteria} in the template")
        else:
            raise ValueError(
                f"aggregation {method!r} is for composite mode; use weighted or holistic"
            )

    @property
    def positive_weight(self) -> float:
        return sum(c.weight for c in self.criteria if c.weight > 0)


def aggregate_criteria(
    criteria: Sequence[Criterion], p_met: Sequence[float], aggregation: Aggregation
) -> tuple[float, list[dict[str, Any]], list[str]]:
    """Weighted sum of P(met) over the total positive weight, clipped to [0, 1]; pitfalls
    (negative weights) subtract. A hard rule judged not met caps the reward at the floor.

    Returns (reward, one row per criterion, ids of failed hard rules).
    """
    positive = sum(c.weight for c in criteria if c.weight > 0)
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    total = 0.0
    for criterion, p in zip(criteria, p_met, strict=True):
        met = p >= aggregation.threshold
        contribution = criterion.weight * p
        total += contribution
        if criterion.kind == "hard_rule" and not met:
            failed.append(criterion.id)
        rows.append(
            {
                "id": criterion.id,
                "kind": criterion.kind,
                "weight": criterion.weight,
                "p_met": p,
                "met": met,
                "contribution": contribution,
            }
        )
    reward = min(1.0, max(0.0, total / positive))
    if failed:
        reward = min(reward, aggregation.hard_rule_floor)
    return reward, rows, failed


def criteria_list(criteria: Sequence[Criterion]) -> str:
    lines = []
    for i, c in enumerate(criteria, start=1):
        tag = "must" if c.kind == "hard_rule" else ("avoid" if c.weight < 0 else "should")
        lines.append(f"{i}. ({tag}, weight {c.weight:g}) {c.text}")
    return "\n".join(lines)


class RubricJudge(Judge[RubricModeSpec]):
    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        if (blocked := await answer_free_judgment(self.rubric, item)) is not None:
            return blocked
        if self.rubric.aggregation.method == "holistic":
            return await self._holistic(item, engine)
        criteria = self.rubric.criteria
        first = await self._criterion(item, engine, criteria[0])
        rest = await asyncio.gather(*(self._criterion(item, engine, c) for c in criteria[1:]))
        reads = [first, *rest]
        p_met = [r.distribution["yes"] for r in reads]
        reward, rows, failed = aggregate_criteria(criteria, p_met, self.rubric.aggregation)
        for row, read in zip(rows, reads, strict=True):
            row["valid_mass"] = read.valid_mass
            if read.reasoning is not None:
                row["reasoning"] = read.reasoning
        return Judgment(
            reward=reward,
            details={
                "criteria": rows,
                "hard_rules_failed": failed,
                "prompt_tokens": sum(r.num_prompt_tokens for r in reads),
                "cached_prompt_tokens": sum(r.num_cached_tokens for r in reads),
            },
        )

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        if self.rubric.aggregation.method == "holistic":
            criteria = criteria_list(self.rubric.criteria)
            return [judge_messages(self.rubric, item, criteria=criteria)]
        return [judge_messages(self.rubric, item, criterion=c.text) for c in self.rubric.criteria]

    async def _criterion(
        self, item: JudgeItem, engine: JudgeEngine, criterion: Criterion
    ) -> VerdictRead:
        return await read_yes_no(
            self.rubric, judge_messages(self.rubric, item, criterion=criterion.text), engine
        )

    async def _holistic(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        criteria = criteria_list(self.rubric.criteria)
        judgment = await score_on_scale(
            self.rubric, judge_messages(self.rubric, item, criteria=criteria), engine
        )
        judgment.details["criteria"] = [
            {"id": c.id, "kind": c.kind, "weight": c.weight} for c in self.rubric.criteria
        ]
        return judgment


MODE = JudgeMode(RubricModeSpec, rubric_only(RubricJudge))
