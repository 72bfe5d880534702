"""How several scores (criteria of a rubric, components of a composite) become one reward."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from judge_server.rubrics.strict import StrictModel


class Aggregation(StrictModel):
    """How per-criterion (rubric mode) or per-component (composite mode) scores combine."""

    method: Literal["weighted", "points", "holistic", "min", "mean"] = Field(
        "weighted",
        description="rubric mode: weighted (one verdict per criterion, P(met) x weight), "
        "points (one verdict per criterion, met or not: HealthBench's points met over positive "
        "points) or holistic (one call scoring all criteria); composite mode: weighted, min or "
        "mean.",
    )
    hard_rule_floor: float = Field(
        0.0, ge=0, le=1, description="Reward cap when any hard rule is not met."
    )
    threshold: float = Field(
        0.5, gt=0, lt=1, description="P(met) at or above which a criterion counts as met."
    )
