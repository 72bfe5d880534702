"""Group scoring (Pref-GRPO): rewards for the responses a policy sampled for one prompt.

Each distinct pair of texts the pairing plan needs becomes one pairwise item (the response shown
first, the other in ``metadata.response_b``) scored through the service like any other batch,
so the result cache, in-flight dedup, admission and cancellation all apply. The win rates and
the Bradley-Terry fit come from the pure logic in ``judges.group``; copies of one text get one
result (reward, status and details), whatever their positions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from judge_server.engines.base import ChatMessage
from judge_server.engines.images import ImageData
from judge_server.engines.usage import Usage
from judge_server.judges import Judge, JudgeItem
from judge_server.judges.group import (
    DEFAULT_ANCHORS,
    DEFAULT_ROUNDS,
    GroupPlan,
    Pair,
    Pairing,
    pair_outcomes,
    plan_group,
    standings,
    text_strengths,
)
from judge_server.judges.pairwise import RESPONSE_B
from judge_server.service.errors import InvalidRubric
from judge_server.service.input_checks import text_problem
from judge_server.service.scoring import ItemResult, Rejected, ScoreInput, Status

if TYPE_CHECKING:
    from judge_server.service.judge_service import JudgeService


@dataclass(frozen=True)
class GroupOptions:
    pairing: Pairing = "all_pairs"
    rounds: int | None = None
    anchors: int | None = None
    timeout_s: float | None = None
    use_cache: bool = True


@dataclass(frozen=True)
class MemberResult:
    """One response's reward: its win rate, or a status and no reward."""

    index: int
    status: Status
    reward: float | None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Comparison:
    i: int
    j: int
    status: Status
    p_i_beats_j: float | None
    agree: bool | None = None
    identical: bool = False
    cached: bool = False
    error: str | None = None


@dataclass(frozen=True)
class PairingSummary:
    strategy: Pairing
    rounds: int | None
    anchors: int | None
    comparisons: int
    judge_calls: int


@dataclass(frozen=True)
class GroupScore:
    results: list[MemberResult]
    comparisons: list[Comparison]
    pairing: PairingSummary
    usage: Usage = field(default_factory=Usage)


async def score_group(
    service: JudgeService,
    judge: Judge,
    prompt: str | list[ChatMessage],
    responses: Sequence[str],
    reference: str | None,
    options: GroupOptions,
    *,
    images: Sequence[ImageData] = (),
) -> GroupScore:
    """Rewards for ``responses``; ``images``: those the prompt and responses name by slot
    (``engines.images``). A comparison carries only the images its own texts name (the
    prompt's and its two responses'), so one broken response image fails only its own."""
    rubric = judge.rubric
    if rubric.mode != "pairwise":
        raise InvalidRubric(
            f"rubric {rubric.name!r} is {rubric.mode} mode; a group needs a pairwise rubric",
            param="rubric",
        )
    plan = plan_group(responses, options.pairing, rounds=options.rounds, anchors=options.anchors)
    hint = " (pairing round_robin or anchor needs fewer)"
    service.check_size(len(plan.calls), noun="comparisons to judge", param="responses", hint=hint)
    service.check_calls(judge, len(plan.calls), param="responses", hint=hint)
    unjudgeable = _text_problems(plan, service.settings.max_text_chars)
    shared = prompt if isinstance(prompt, str) else "".join(m["content"] for m in prompt)
    shared += reference or ""
    items: list[ScoreInput] = []
    for a, b in plan.calls:
        problem = unjudgeable.get(a) or unjudgeable.get(b)
        if problem is not None:  # its comparisons fail as invalid_input; the others stand
            items.append(Rejected(f"{a}:{b}", problem))
            continue
        items.append(
            JudgeItem(
                id=f"{a}:{b}",
                prompt=prompt,
                response=plan.texts[a],
                reference=reference,
                metadata={RESPONSE_B: plan.texts[b]},
                images=_named(images, shared, plan.texts[a], plan.texts[b]),
            )
        )
    results = await service.score(
        judge, items, timeout_s=options.timeout_s, use_cache=options.use_cache
    )
    by_call = dict(zip(plan.calls, results, strict=True))
    # The fit is O(n^3) for n responses: keep it off the event loop.
    members, comparisons = await asyncio.to_thread(_aggregate, plan, by_call)
    pairing = options.pairing
    usage = Usage()
    for result in results:
        usage.add(result.usage)
    return GroupScore(
        results=members,
        comparisons=comparisons,
        pairing=PairingSummary(
            strategy=pairing,
            rounds=(options.rounds or DEFAULT_ROUNDS) if pairing == "round_robin" else None,
            anchors=(options.anchors or DEFAULT_ANCHORS) if pairing == "anchor" else None,
            comparisons=len(plan.pairs),
            judge_calls=len(plan.calls),
        ),
        usage=usage,
    )


def _named(images: Sequence[ImageData], *texts: str) -> tuple[ImageData, ...]:
    """The distinct ``images`` whose slot one of ``texts`` holds."""
    named = {i.sha256: i for i in images if any(i.slot in text for text in texts)}
    return tuple(named.values())


def _text_problems(plan: GroupPlan, max_chars: int) -> dict[int, str]:
    """Texts no judge can read (not valid Unicode, too long), by text index, named by the
    first response that has them."""
    first: dict[int, int] = {}
    for index, text in enumerate(plan.text_of):
        first.setdefault(text, index)
    problems = {
        text: text_problem(plan.texts[text], f"responses.{index}", max_chars)
        for text, index in first.items()
    }
    return {text: problem for text, problem in problems.items() if problem is not None}


def _aggregate(
    plan: GroupPlan, by_call: dict[Pair, ItemResult]
) -> tuple[list[MemberResult], list[Comparison]]:
    p_first = {
        call: float(r.details["p_a"]) if r.status == "ok" else None for call, r in by_call.items()
    }
    outcomes = pair_outcomes(plan, p_first)
    table = standings(plan, outcomes)
    strengths = text_strengths(plan, outcomes)
    comparisons: list[Comparison] = []
    # By text, like the standings: copies share one status and error.
    failures: list[list[ItemResult]] = [[] for _ in plan.texts]
    for (i, j), p in zip(plan.pairs, outcomes, strict=True):
        a, b = plan.text_of[i], plan.text_of[j]
        if a == b:
            comparisons.append(Comparison(i=i, j=j, status="ok", p_i_beats_j=p, identical=True))
            continue
        result = by_call[(min(a, b), max(a, b))]
        if result.status != "ok":
            failures[a].append(result)
            failures[b].append(result)
        comparisons.append(
            Comparison(
                i=i,
                j=j,
                status=result.status,
                p_i_beats_j=p,
                agree=result.details.get("agree"),
                cached=result.cached,
                error=result.error,
            )
        )
    members: list[MemberResult] = []
    for k, standing in enumerate(table):
        details: dict[str, Any] = {
            "wins": standing.wins,
            "comparisons": standing.comparisons,
            "failed": standing.failed,
            "bt_score": strengths[k],
        }
        if standing.ok:
            members.append(MemberResult(k, "ok", standing.win_rate, details))
            continue
        # Every judged comparison failed: say how (one status if they agree), never a score.
        failed = failures[plan.text_of[k]]
        statuses = {r.status for r in failed}
        status: Status = statuses.pop() if len(statuses) == 1 else "judge_error"
        error = failed[0].error if failed else "no comparisons"
        members.append(MemberResult(k, status, None, details, error))
    return members, comparisons
