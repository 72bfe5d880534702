"""Components of a composite rubric: another rubric, or a deterministic check."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from judge_server.rubrics.patterns import compile_pattern
from judge_server.rubrics.strict import StrictModel

CheckKind = Literal["regex_must", "regex_must_not", "valid_json", "length_penalty"]


class Component(StrictModel):
    """One part of a composite: another rubric, or a deterministic check."""

    rubric: str | None = Field(
        None, description="A rubric name (floating: its live version) or name@version (pinned)."
    )
    check: CheckKind | None = None
    weight: float = Field(1.0, gt=0)
    pattern: str | None = Field(
        None,
        description="regex checks: searched in the response; RE2 syntax (linear time: no "
        "backreferences or lookaround).",
    )
    max_length: int | None = Field(
        None, ge=1, description="length_penalty: the length at which the penalty is full."
    )
    overlong_buffer: int = Field(
        0,
        ge=0,
        description="length_penalty: the penalty ramps linearly over this many units "
        "before max_length (a soft overlong ramp); 0 means a hard cut at max_length.",
    )
    unit: Literal["chars", "words", "tokens"] = "tokens"

    @model_validator(mode="after")
    def _one_kind(self) -> Component:
        if (self.rubric is None) == (self.check is None):
            raise ValueError("a component needs exactly one of 'rubric' or 'check'")
        if self.check in ("regex_must", "regex_must_not"):
            if not self.pattern:
                raise ValueError(f"{self.check} needs a 'pattern'")
            compile_pattern(self.pattern)  # RE2: refused here, with the reason, not at scoring
        if self.check == "length_penalty":
            if self.max_length is None:
                raise ValueError("length_penalty needs 'max_length'")
            if self.overlong_buffer >= self.max_length:
                raise ValueError("overlong_buffer must be smaller than max_length")
        return self

    @property
    def label(self) -> str:
        return self.rubric if self.rubric is not None else str(self.check)
