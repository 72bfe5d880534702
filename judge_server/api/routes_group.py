"""POST /v1/score/group: rewards for a group of responses to one prompt (Pref-GRPO).

Each distinct pair of texts the pairing plan needs becomes one pairwise item (the response shown
first, the other in ``metadata.response_b``) scored through the same Scorer as /v1/score, so the
result cache, in-flight dedup, admission and disconnect cancellation all apply.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from judge_server.api.deps import ReadyStateDep
from judge_server.api.errors import ApiError
from judge_server.api.protocol import (
    ComparisonOut,
    ErrorEnvelope,
    GroupResultOut,
    GroupScoreRequest,
    GroupScoreResponse,
    PairingOut,
    RubricRef,
    Status,
)
from judge_server.api.routes_score import build_judge, score_admitted
from judge_server.judges import JudgeItem
from judge_server.judges.group import (
    DEFAULT_ANCHORS,
    DEFAULT_ROUNDS,
    GroupPlan,
    Pair,
    bradley_terry,
    pair_outcomes,
    plan_group,
    standings,
)
from judge_server.judges.pairwise import RESPONSE_B
from judge_server.scoring import ItemResult

router = APIRouter(tags=["score"])

_ERRORS = {code: {"model": ErrorEnvelope} for code in (400, 404, 413, 422, 429, 503)}


@router.post("/v1/score/group", response_model=GroupScoreResponse, responses=_ERRORS)  # type: ignore[arg-type]
async def score_group(
    request: GroupScoreRequest, state: ReadyStateDep, http_request: Request
) -> GroupScoreResponse:
    judge = build_judge(request.rubric, state.registry)
    rubric = judge.rubric
    if rubric.mode != "pairwise":
        raise ApiError(
            422,
            "invalid_rubric",
            f"rubric {rubric.name!r} is {rubric.mode} mode; a group needs a pairwise rubric",
            "rubric",
        )
    options = request.options
    plan = plan_group(
        request.responses, options.pairing, rounds=options.rounds, anchors=options.anchors
    )
    limit = state.settings.max_items_per_request
    if len(plan.calls) > limit:
        raise ApiError(
            413,
            "too_many_items",
            f"{len(plan.calls)} comparisons to judge; at most {limit} per request "
            "(pairing round_robin or anchor needs fewer)",
            "responses",
        )
    prompt = request.judge_prompt()
    items = [
        JudgeItem(
            id=f"{a}:{b}",
            prompt=prompt,
            response=plan.texts[a],
            reference=request.reference,
            metadata={RESPONSE_B: plan.texts[b]},
        )
        for a, b in plan.calls
    ]
    timeout_s = options.timeout_s or state.settings.default_timeout_s
    results = await score_admitted(state, http_request, judge, items, timeout_s, options.cache)
    by_call = dict(zip(plan.calls, results, strict=True))
    # The fit is O(n^3) for n responses: keep it off the event loop.
    response_rows, comparison_rows = await asyncio.to_thread(_aggregate, plan, by_call)
    return GroupScoreResponse(
        rubric=RubricRef(name=rubric.name, version=rubric.version),
        model=state.engine.model_id,
        results=response_rows,
        comparisons=comparison_rows,
        pairing=PairingOut(
            strategy=options.pairing,
            rounds=(options.rounds or DEFAULT_ROUNDS) if options.pairing == "round_robin" else None,
            anchors=(options.anchors or DEFAULT_ANCHORS) if options.pairing == "anchor" else None,
            comparisons=len(plan.pairs),
            judge_calls=len(plan.calls),
        ),
    )


def _aggregate(
    plan: GroupPlan, by_call: dict[Pair, ItemResult]
) -> tuple[list[GroupResultOut], list[ComparisonOut]]:
    p_first = {
        call: float(r.details["p_a"]) if r.status == "ok" else None for call, r in by_call.items()
    }
    outcomes = pair_outcomes(plan, p_first)
    table = standings(plan, outcomes)
    strengths = bradley_terry(len(plan.text_of), plan.pairs, outcomes)
    comparisons: list[ComparisonOut] = []
    failures: list[list[ItemResult]] = [[] for _ in plan.text_of]
    for (i, j), p in zip(plan.pairs, outcomes, strict=True):
        a, b = plan.text_of[i], plan.text_of[j]
        if a == b:
            comparisons.append(ComparisonOut(i=i, j=j, status="ok", p_i_beats_j=p, identical=True))
            continue
        result = by_call[(min(a, b), max(a, b))]
        if result.status != "ok":
            failures[i].append(result)
            failures[j].append(result)
        comparisons.append(
            ComparisonOut(
                i=i,
                j=j,
                status=result.status,
                p_i_beats_j=p,
                agree=result.details.get("agree"),
                cached=result.cached,
                error=result.error,
            )
        )
    rows: list[GroupResultOut] = []
    for k, standing in enumerate(table):
        details: dict[str, Any] = {
            "wins": standing.wins,
            "comparisons": standing.comparisons,
            "failed": standing.failed,
            "bt_score": strengths[k],
        }
        if standing.ok:
            rows.append(
                GroupResultOut(index=k, status="ok", reward=standing.win_rate, details=details)
            )
            continue
        # Every judged comparison failed: say how (one status if they agree), never a score.
        statuses = {r.status for r in failures[k]}
        status: Status = statuses.pop() if len(statuses) == 1 else "judge_error"
        error = failures[k][0].error if failures[k] else "no comparisons"
        rows.append(
            GroupResultOut(index=k, status=status, reward=None, details=details, error=error)
        )
    return rows, comparisons
