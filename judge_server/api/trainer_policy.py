"""What the trainer dialect routes share: which rubric, and the one failure policy.

OpenRLHF, slime and veRL turn every reward into a tensor, so a null reward crashes them. A failed
item therefore becomes either the configured fill value, flagged in the answer, or an HTTP error
the trainer retries; either way it is counted in ``judge_trainer_failures`` and never hidden.
The default is ``fill`` with 0.0, the bottom of the range: a policy cannot raise its reward by
making the judge fail, and one bad sample does not stall a training run in retries.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request

from judge_server.api.deps import ReadyServiceDep
from judge_server.api.disconnect import cancel_on_disconnect
from judge_server.api.errors import ApiError
from judge_server.judges import Judge
from judge_server.service import (
    RETRY_AFTER_S,
    InvalidRubric,
    ItemResult,
    JudgeService,
    ScoreInput,
)

OnFailure = Literal["fill", "error"]


@dataclass(frozen=True)
class TrainerPolicy:
    """A trainer request's rubric and failure policy: query parameters over server settings."""

    rubric: str
    on_failure: OnFailure
    fill_value: float


async def trainer_policy(  # async: a plain def would run in FastAPI's thread pool
    service: ReadyServiceDep,
    rubric: Annotated[
        str | None, Query(description="Rubric name or name@version (default: trainer_rubric).")
    ] = None,
    on_failure: Annotated[
        OnFailure | None,
        Query(description="fill: the fill value, flagged; error: 503/422 the trainer retries."),
    ] = None,
    fill_value: Annotated[
        float | None, Query(description="Reward of a failed item under on_failure=fill.")
    ] = None,
) -> TrainerPolicy:
    settings = service.settings
    name = rubric or settings.trainer_rubric
    if not name:
        raise ApiError(
            422,
            "invalid_request",
            "no rubric: add ?rubric=NAME to the URL or set JUDGE_TRAINER_RUBRIC on the server",
            param="rubric",
        )
    if fill_value is not None and not math.isfinite(fill_value):
        raise ApiError(422, "invalid_request", "fill_value must be finite", param="fill_value")
    return TrainerPolicy(
        rubric=name,
        on_failure=on_failure or settings.trainer_on_failure,
        fill_value=settings.trainer_fill_value if fill_value is None else fill_value,
    )


TrainerPolicyDep = Annotated[TrainerPolicy, Depends(trainer_policy)]


@dataclass(frozen=True)
class TrainerScores:
    """Results of a trainer request with the policy applied: ``rewards`` are all numbers."""

    judge: Judge
    model: str
    results: list[ItemResult]
    rewards: list[float]

    @property
    def ok(self) -> list[bool]:
        return [r.status == "ok" for r in self.results]

    @property
    def step_scores(self) -> list[list[float] | None]:
        """Each judged item's per-step scores (a process rubric's ``details.steps``, whose
        aggregate is the reward), else None."""
        return [
            [float(s["score"]) for s in r.details["steps"]]
            if r.status == "ok" and isinstance(r.details.get("steps"), list)
            else None
            for r in self.results
        ]


async def score_for_trainer(
    dialect: str,
    service: JudgeService,
    policy: TrainerPolicy,
    items: Sequence[ScoreInput],
    request: Request,
) -> TrainerScores:
    """Score through the one scoring path, then apply the failure policy."""
    await service.refresh_for(policy.rubric)
    judge = service.judge(policy.rubric)
    if judge.rubric.mode == "pairwise":  # would fill every sample: a configuration error
        raise InvalidRubric(
            f"rubric {judge.rubric.name!r} compares two responses; a trainer route scores one "
            "(use /v1/score/group for group rewards)",
            param="rubric",
        )
    results = await cancel_on_disconnect(request, service.score(judge, items))
    failed = [r for r in results if r.status != "ok" or r.reward is None]
    counter = service.metrics.trainer_failures
    # error: the trainer retries (worth it for a timeout or an overloaded engine, and loud for
    # a misconfiguration); fill is the default because a judge_error is often deterministic (a
    # judge that puts too little mass on valid answers for this item) and retries would only
    # stall the run before it fails.
    if failed and policy.on_failure == "error":
        for r in failed:
            counter.labels(dialect, r.status, "error").inc()
        raise _failure_error(failed)
    for r in failed:
        counter.labels(dialect, r.status, "fill").inc()
    rewards = [
        r.reward if r.status == "ok" and r.reward is not None else policy.fill_value
        for r in results
    ]
    return TrainerScores(judge, service.model_id(judge), results, rewards)


def reference_of(label: Any) -> str | None:
    """A trainer's label as the reference answer: text as is, other JSON values as JSON (the
    client adapters read labels the same way); empty means none."""
    if label is None or label == "":
        return None
    if isinstance(label, str):
        return label
    return json.dumps(label, ensure_ascii=False)


def _failure_error(failed: list[ItemResult]) -> ApiError:
    first = failed[0]
    message = (
        f"{len(failed)} item(s) not judged (on_failure=error); "
        f"item {first.id}: {first.status}: {first.error}"
    )
    if all(r.status == "invalid_input" for r in failed):  # the same input fails the same way
        return ApiError(422, "invalid_input", message, param="items")
    return ApiError(503, "judge_failed", message, headers={"Retry-After": str(RETRY_AFTER_S)})
