"""Rubric mode: one yes/no verdict per criterion, aggregated into a reward.

Every criterion prompt repeats the same conversation and response and differs only at the end
(the criterion comes last), so vLLM's prefix cache computes the long shared part once. The first
criterion runs alone to put that prefix in the cache; the rest then run concurrently and hit it.

``holistic`` puts all criteria into one pointwise call instead. ``points`` reads the same
verdicts as ``weighted`` but counts a criterion as met or not (HealthBench's arithmetic).

A rubric that declares ``instance_criteria: allowed|required`` takes each item's own criteria
(its ``rubrics`` field, see ``rubrics.instance``) in place of its own: the rubric supplies the
prompt and aggregation, the item the criteria, and the details carry their ``criteria_hash``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.answer_guard import answer_free_judgment
from judge_server.judges.base import CheckedJudge
from judge_server.judges.items import InvalidItemError, JudgeFailure, JudgeItem, Judgment
from judge_server.judges.pointwise import score_on_scale
from judge_server.judges.prompting import judge_messages
from judge_server.judges.registration import JudgeMode, with_checks
from judge_server.judges.verdicts import VerdictRead, read_yes_no
from judge_server.rubrics.aggregation import Aggregation
from judge_server.rubrics.criteria import Criterion
from judge_server.rubrics.instance import InstanceCriteriaPolicy, criteria_hash
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
    instance_criteria: InstanceCriteriaPolicy = Field(
        "forbidden",
        description="Whether items may bring their own criteria (their rubrics field), which "
        "replace these: forbidden, allowed, or required (then criteria may be empty).",
    )

    def check_mode(self) -> None:
        assert self.template is not None, "checked before the mode's own checks"
        if not self.criteria and self.instance_criteria != "required":
            raise ValueError("rubric mode needs at least one criterion")
        ids = [c.id for c in self.criteria]
        if len(set(ids)) != len(ids):
            raise ValueError(
                f"duplicate criterion ids: {sorted({i for i in ids if ids.count(i) > 1})}"
            )
        if self.criteria and not any(c.weight > 0 for c in self.criteria):
            raise ValueError("rubric mode needs at least one criterion with a positive weight")
        method = self.aggregation.method
        if method in ("weighted", "points"):
            at = self.template.find("{criterion}")
            if at < 0:
                raise ValueError(f"{method} rubric mode needs {{criterion}} in the template")
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
                f"aggregation {method!r} is for composite mode; use weighted, points or holistic"
            )

    @property
    def positive_weight(self) -> float:
        return sum(c.weight for c in self.criteria if c.weight > 0)


def aggregate_criteria(
    criteria: Sequence[Criterion], p_met: Sequence[float], aggregation: Aggregation
) -> tuple[float, list[dict[str, Any]], list[str]]:
    """``weighted``: the weighted sum of P(met) over the total positive weight; ``points``: the
    weights of the criteria met (P(met) >= threshold) over the total positive weight. Pitfalls
    (negative weights) subtract; the reward is clipped to [0, 1]. A hard rule judged not met
    caps the reward at the floor. A sum that is not finite is ``JudgeFailure``: clipping would
    turn a NaN into a reward of 0 (weights are bounded, so this is a guard, not a path).

    Returns (reward, one row per criterion, ids of failed hard rules).
    """
    positive = sum(c.weight for c in criteria if c.weight > 0)
    binary = aggregation.method == "points"
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    total = 0.0
    for criterion, p in zip(criteria, p_met, strict=True):
        met = p >= aggregation.threshold
        contribution = (criterion.weight if met else 0.0) if binary else criterion.weight * p
        total += contribution
        if criterion.kind == "hard_rule" and not met:
            failed.append(criterion.id)
        row: dict[str, Any] = {
            "id": criterion.id,
            "kind": criterion.kind,
            "weight": criterion.weight,
            "p_met": p,
            "met": met,
            "contribution": contribution,
        }
        if tags := getattr(criterion, "tags", ()):
            row["tags"] = list(tags)
        rows.append(row)
    if not (math.isfinite(total) and math.isfinite(positive)):
        raise JudgeFailure(
            f"the criteria's points do not sum to a finite number ({total}/{positive})"
        )
    reward = min(1.0, max(0.0, total / positive))
    if failed:
        reward = min(reward, aggregation.hard_rule_floor)
    return reward, rows, failed


def points_score(criteria: Sequence[Criterion], met: Sequence[bool]) -> float:
    """HealthBench's per-example score, unclipped: points of the criteria met over the sum of
    the positive points. As ``calculate_score`` in openai/simple-evals healthbench_eval.py
    (commit ee3b0318d8d1d9d72755a4120879be65f7c07e9e, MIT). HealthBench clips only the mean over
    examples to [0, 1] (``_compute_clipped_stats``); a reward here is clipped per item, so this
    unclipped value is kept in the details for the dataset-level figure."""
    possible = sum(c.weight for c in criteria if c.weight > 0)
    achieved = sum(c.weight for c, m in zip(criteria, met, strict=True) if m)
    return achieved / possible


def criteria_list(criteria: Sequence[Criterion]) -> str:
    lines = []
    for i, c in enumerate(criteria, start=1):
        tag = "must" if c.kind == "hard_rule" else ("avoid" if c.weight < 0 else "should")
        lines.append(f"{i}. ({tag}, weight {c.weight:g}) {c.text}")
    return "\n".join(lines)


class RubricJudge(CheckedJudge[RubricModeSpec]):
    def readings(self, item: JudgeItem | None) -> int:
        if self.rubric.aggregation.method == "holistic":
            return 1
        # An item's own criteria replace the rubric's where the rubric takes them (else the
        # item is refused before any call, so the rubric's count stays an upper bound).
        return len(self.rubric.criteria if item is None else self.criteria_of(item))

    def check_criteria(self, item: JudgeItem) -> None:
        policy = self.rubric.instance_criteria
        if item.criteria is not None and policy == "forbidden":
            super().check_criteria(item)
        if item.criteria is None and policy == "required":
            raise InvalidItemError(
                f"rubric {self.rubric.name!r} judges each item by its own criteria: the item "
                "needs a rubrics field"
            )

    def criteria_of(self, item: JudgeItem) -> tuple[Criterion, ...]:
        """The criteria this item is judged by: its own when it brought them, else the
        rubric's."""
        if item.criteria is not None and self.rubric.instance_criteria != "forbidden":
            return item.criteria
        return self.rubric.criteria

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        self.check_criteria(item)
        criteria = self.criteria_of(item)
        if (blocked := await answer_free_judgment(self.rubric, item, self.checks)) is not None:
            judgment = blocked
        elif self.rubric.aggregation.method == "holistic":
            judgment = await self._holistic(item, engine, criteria)
        else:
            judgment = await self._each(item, engine, criteria)
        if item.criteria is not None:
            judgment.details["criteria_hash"] = criteria_hash(criteria)
        return judgment

    async def _each(
        self, item: JudgeItem, engine: JudgeEngine, criteria: Sequence[Criterion]
    ) -> Judgment:
        first = await self._criterion(item, engine, criteria[0])
        rest = await asyncio.gather(*(self._criterion(item, engine, c) for c in criteria[1:]))
        reads = [first, *rest]
        p_met = [r.distribution["yes"] for r in reads]
        aggregation = self.rubric.aggregation
        reward, rows, failed = aggregate_criteria(criteria, p_met, aggregation)
        for row, read in zip(rows, reads, strict=True):
            row["valid_mass"] = read.valid_mass
            if read.reasoning is not None:
                row["reasoning"] = read.reasoning
        details: dict[str, Any] = {"criteria": rows, "hard_rules_failed": failed}
        if aggregation.method == "points":
            details["points_score"] = points_score(criteria, [row["met"] for row in rows])
        details["prompt_tokens"] = sum(r.num_prompt_tokens for r in reads)
        details["cached_prompt_tokens"] = sum(r.num_cached_tokens for r in reads)
        return Judgment(reward=reward, details=details)

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        criteria = self.criteria_of(item)
        if self.rubric.aggregation.method == "holistic":
            return [judge_messages(self.rubric, item, criteria=criteria_list(criteria))]
        return [judge_messages(self.rubric, item, criterion=c.text) for c in criteria]

    async def _criterion(
        self, item: JudgeItem, engine: JudgeEngine, criterion: Criterion
    ) -> VerdictRead:
        return await read_yes_no(
            self.rubric, judge_messages(self.rubric, item, criterion=criterion.text), engine
        )

    async def _holistic(
        self, item: JudgeItem, engine: JudgeEngine, criteria: Sequence[Criterion]
    ) -> Judgment:
        judgment = await score_on_scale(
            self.rubric, judge_messages(self.rubric, item, criteria=criteria_list(criteria)), engine
        )
        judgment.details["criteria"] = [
            {"id": c.id, "kind": c.kind, "weight": c.weight} for c in criteria
        ]
        return judgment


MODE = JudgeMode(RubricModeSpec, with_checks(RubricJudge))
