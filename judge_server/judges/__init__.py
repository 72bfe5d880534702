"""Scoring modes. Each judge is pure logic over the engine seam (no vllm import, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping

from judge_server.engines.base import RewardModel
from judge_server.judges.base import (
    InvalidItemError,
    Judge,
    JudgeFailure,
    JudgeItem,
    Judgment,
)
from judge_server.judges.composite import CompositeJudge, Resolver
from judge_server.judges.likelihood import LikelihoodJudge
from judge_server.judges.pairwise import PairwiseJudge
from judge_server.judges.pointwise import PointwiseJudge
from judge_server.judges.reward_model import RewardModelJudge
from judge_server.judges.rubric import RubricJudge
from judge_server.judges.verdict import VerdictJudge
from judge_server.judges.verify import VerifyJudge
from judge_server.rubrics.models import Rubric

SIMPLE_JUDGES: dict[str, type[Judge]] = {
    "pointwise": PointwiseJudge,
    "verdict": VerdictJudge,
    "rubric": RubricJudge,
    "verify": VerifyJudge,
    "likelihood": LikelihoodJudge,
    "pairwise": PairwiseJudge,
}


def judge_for(
    rubric: Rubric,
    resolve: Resolver | None = None,
    depth: int = 0,
    reward_models: Mapping[str, RewardModel] | None = None,
) -> Judge:
    """Build the judge for one request. ``resolve`` looks up component rubrics (composite);
    ``reward_models`` are the scalar reward models this server loaded (reward_model mode)."""
    if rubric.mode == "composite":
        if resolve is None:
            raise JudgeFailure("composite rubrics need a rubric registry to resolve components")

        def make(sub: Rubric, sub_resolve: Resolver | None, sub_depth: int) -> Judge:
            return judge_for(sub, sub_resolve, sub_depth, reward_models)

        return CompositeJudge(rubric, resolve, make, depth)
    if rubric.mode == "reward_model":
        assert rubric.reward_model is not None, "validated by the rubric model"
        name = rubric.reward_model.model
        model = (reward_models or {}).get(name)
        if model is None:
            raise JudgeFailure(
                f"reward model {name!r} is not loaded in this server "
                f"(serve with --reward-model {name}=PATH)"
            )
        return RewardModelJudge(rubric, model)
    judge_class = SIMPLE_JUDGES.get(rubric.mode)
    if judge_class is None:
        raise JudgeFailure(f"mode {rubric.mode!r} is not available in this server")
    return judge_class(rubric)


__all__ = [
    "InvalidItemError",
    "Judge",
    "JudgeFailure",
    "JudgeItem",
    "Judgment",
    "judge_for",
]
