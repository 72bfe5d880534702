"""How a mode plugs in: its spec class and how to build its judge, in one ``JudgeMode``.

A mode's module defines ``MODE = JudgeMode(MySpec, build)``; ``judges.modes`` lists it. Building
gets a ``BuildContext`` holding everything any mode may need (the registry for a composite's
components, the hosted reward models); each mode takes what it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Generic, TypeVar, get_args

from judge_server.engines.base import RewardModel
from judge_server.judges.base import Judge
from judge_server.judges.workers import CheckPool
from judge_server.rubrics.spec import RubricSpec

Resolver = Callable[[str], RubricSpec]
"""Looks a rubric up by ``name`` or ``name@version`` (the registry's ``resolve``)."""

SpecT = TypeVar("SpecT", bound=RubricSpec)


@dataclass(frozen=True)
class BuildContext:
    resolve: Resolver | None
    reward_models: Mapping[str, RewardModel]
    depth: int
    """How deep in a composite this judge sits (0: the rubric the request named)."""
    dispatch: Callable[[RubricSpec, BuildContext], Judge]
    """Builds the judge of any registered mode (for the rubrics a mode contains)."""
    checks: CheckPool
    """Worker processes with deadlines for CPU-bound checks (answers, regexes)."""

    def sub_judge(self, rubric: RubricSpec) -> Judge:
        """The judge of a rubric nested in this one, one level deeper."""
        return self.dispatch(rubric, replace(self, depth=self.depth + 1))


@dataclass(frozen=True)
class JudgeMode(Generic[SpecT]):
    spec: type[SpecT]
    """The mode's rubric spec; its ``mode`` field's literal is the mode's name."""
    build: Callable[[SpecT, BuildContext], Judge]

    def __post_init__(self) -> None:
        self.name  # noqa: B018 -- fail at import, not at the first request

    @property
    def name(self) -> str:
        literals = get_args(self.spec.model_fields["mode"].annotation)
        if len(literals) != 1 or not isinstance(literals[0], str):
            raise TypeError(f"{self.spec.__name__}.mode must be a Literal of one mode name")
        return literals[0]


def with_checks(
    judge: Callable[[SpecT, CheckPool], Judge],
) -> Callable[[SpecT, BuildContext], Judge]:
    """The build of a mode whose judge runs CPU-bound work in the check pool."""

    def build(rubric: SpecT, context: BuildContext) -> Judge:
        return judge(rubric, context.checks)

    return build


def rubric_only(judge: Callable[[SpecT], Judge]) -> Callable[[SpecT, BuildContext], Judge]:
    """The build of a mode whose judge needs nothing but its rubric."""

    def build(rubric: SpecT, _: BuildContext) -> Judge:
        return judge(rubric)

    return build
