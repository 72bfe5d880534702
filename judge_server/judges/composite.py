"""Composite mode: a weighted combination of other rubrics and deterministic checks.

Component rubrics are resolved once, when the judge is built for a request, so the whole request
is scored by one set of versions even if a component is edited meanwhile; each component's
version and score are in the details. A component's score is exactly the reward its rubric gives
on its own, shaping included (``base.shape``; its details keep the ``unshaped_reward``).
``min`` and ``mean`` give conservative ensembles of judges. A component that fails fails the
item: a failure is never averaged into a score, and its sibling components still running are
cancelled (their engine calls would be wasted) so the item fails at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.base import Judge, shape
from judge_server.judges.checks import TEXT_CHECKS, length_check, text_check
from judge_server.judges.items import JudgeFailure, JudgeItem, Judgment
from judge_server.judges.registration import BuildContext, JudgeMode, Resolver
from judge_server.judges.workers import CheckPool
from judge_server.rubrics.aggregation import Aggregation
from judge_server.rubrics.components import Component
from judge_server.rubrics.spec import RubricSpec

MAX_DEPTH = 4
#: a token count over a longer response runs in a thread (see ``_check``)
LENGTH_THREAD_CHARS = 4096


class CompositeSpec(RubricSpec):
    uses_prompt: ClassVar[bool] = False  # its component rubrics have the prompts

    mode: Literal["composite"]
    components: tuple[Component, ...] = Field(default=(), max_length=64, description="The parts.")
    aggregation: Aggregation = Field(default_factory=Aggregation)

    def check_mode(self) -> None:
        if not self.components:
            raise ValueError("composite mode needs at least one component")
        if self.aggregation.method in ("holistic", "points"):
            raise ValueError("composite aggregation is weighted, min or mean")
        for comp in self.components:
            if comp.rubric is not None and comp.rubric.partition("@")[0] == self.name:
                raise ValueError("a composite cannot include itself")


class CompositeJudge(Judge[CompositeSpec]):
    def __init__(
        self,
        rubric: CompositeSpec,
        resolve: Resolver,
        make_judge: Callable[[RubricSpec], Judge],
        checks: CheckPool,
        depth: int = 0,
    ) -> None:
        super().__init__(rubric)
        self.checks = checks
        if depth > MAX_DEPTH:
            raise JudgeFailure(
                f"composite {rubric.name!r} nests deeper than {MAX_DEPTH} (a cycle?)"
            )
        self.parts: list[tuple[Component, Judge | None]] = []
        for comp in rubric.components:
            sub = None
            if comp.rubric is not None:
                sub = make_judge(resolve(comp.rubric))
                # Its criteria come from each item, and a composite passes none on: every item
                # would be refused, so the composite is refused when it is built.
                if getattr(sub.rubric, "instance_criteria", None) == "required":
                    raise JudgeFailure(
                        f"component {comp.label!r} judges each item by the item's own criteria "
                        "(instance_criteria: required), which a composite cannot give it; use "
                        "a rubric with criteria of its own"
                    )
            self.parts.append((comp, sub))
        # An image item's images reach every component: each must see them.
        self.takes_images = all(sub.takes_images for _, sub in self.parts if sub is not None)

    def validate(self, item: JudgeItem) -> None:
        for _, sub in self.parts:
            if sub is not None:
                sub.validate(item)

    def identity(self) -> str:
        parts = [sub.identity() for _, sub in self.parts if sub is not None]
        return "+".join([self.rubric.version, *parts])

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        return [msgs for _, sub in self.parts if sub is not None for msgs in sub.preview(item)]

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        async def one(comp: Component, sub: Judge | None) -> dict[str, Any]:
            if sub is None:
                score, evidence = await self._check(comp, item.response, engine)
                return {"component": comp.label, "weight": comp.weight, "score": score, **evidence}
            # Shaped as the rubric is on its own: a component scores what its rubric says.
            judgment = shape(sub.rubric, await sub.judge(item, engine))
            return {
                "component": comp.label,
                "rubric": {"name": sub.rubric.name, "version": sub.rubric.version},
                "weight": comp.weight,
                "score": judgment.reward,
                "details": judgment.details,
            }

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(c, s)) for c, s in self.parts]
        except ExceptionGroup as failed:
            # The first failure fails the item with its own type (judge_error, invalid_input
            # for a prompt too long); the group has cancelled the other components.
            raise failed.exceptions[0] from None
        rows = [task.result() for task in tasks]
        scores = [float(r["score"]) for r in rows]
        method = self.rubric.aggregation.method
        if method == "min":
            reward = min(scores)
        elif method == "mean":
            reward = sum(scores) / len(scores)
        else:
            weights = [c.weight for c, _ in self.parts]
            reward = sum(w * s for w, s in zip(weights, scores, strict=True)) / sum(weights)
        return Judgment(reward=min(1.0, max(0.0, reward)), details={"components": rows})


    async def _check(
        self, comp: Component, response: str, engine: JudgeEngine
    ) -> tuple[float, dict[str, Any]]:
        assert comp.check is not None
        if comp.check in TEXT_CHECKS:
            # A regex or a JSON parse over a long response is CPU work: a worker with a
            # deadline, not the event loop. Its failure fails the item (a JudgeFailure).
            return await self.checks.run(
                text_check, comp.check, comp.pattern, response, what=f"the {comp.check} check"
            )
        if comp.unit == "tokens" and len(response) > LENGTH_THREAD_CHARS:
            # Tokenising a long response takes about 1 ms per 1,000 characters; the fast
            # tokenizer releases the GIL, so a thread keeps the event loop free.
            return await asyncio.to_thread(length_check, comp, response, engine)
        return length_check(comp, response, engine)


def build(rubric: CompositeSpec, context: BuildContext) -> Judge:
    if context.resolve is None:
        raise JudgeFailure("composite rubrics need a rubric registry to resolve components")
    return CompositeJudge(
        rubric, context.resolve, context.sub_judge, context.checks, context.depth
    )


MODE = JudgeMode(CompositeSpec, build)
