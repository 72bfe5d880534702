"""Criteria: the yes/no statements a rubric-mode judge checks one at a time."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from judge_server.rubrics.strict import StrictModel

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$"
#: Bound on a criterion's weight: sums of weights must stay finite (two weights of 1e308 sum to
#: inf, and inf/inf is a NaN reward); no rubric needs more than this.
MAX_WEIGHT = 1e6


class Criterion(StrictModel):
    """One thing the judge checks, answered yes/no in its own judge call."""

    id: str = Field(pattern=ID_PATTERN, description="Stable id, shown in the details.")
    text: str = Field(
        min_length=1, max_length=4096, description="What must hold, as a yes/no statement."
    )
    weight: float = Field(
        1.0,
        ge=-MAX_WEIGHT,
        le=MAX_WEIGHT,
        description="Points when met; negative for a pitfall (subtracts when met).",
    )
    kind: Literal["principle", "hard_rule"] = Field(
        "principle",
        description="A hard_rule that is not met caps the reward at aggregation.hard_rule_floor.",
    )

    @model_validator(mode="after")
    def _nonzero(self) -> Criterion:
        if self.weight == 0:
            raise ValueError(f"criterion {self.id!r} has weight 0; remove it instead")
        if self.kind == "hard_rule" and self.weight < 0:
            raise ValueError(f"hard rule {self.id!r} must have a positive weight")
        return self
