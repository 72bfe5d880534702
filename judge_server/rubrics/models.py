"""Rubric schema. A rubric is data: YAML on disk, JSON over the wire, validated here.

Its version is a hash of its normalised content (every field, defaults filled in, keys sorted),
so formatting, comments and key order in the YAML never change it, and any change of meaning does.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_server.rubrics.template import TemplateError, check_template

VERSION_CHARS = 12
NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"

Mode = Literal["pointwise", "verdict"]


class RubricError(ValueError):
    """A rubric definition is invalid. The message says which field and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreScale(_Strict):
    """Integer scores the judge answers with; each must be one token of the judge model."""

    min: int = Field(1, ge=0, le=9)
    max: int = Field(9, ge=1, le=9)

    @model_validator(mode="after")
    def _ordered(self) -> ScoreScale:
        if self.max <= self.min:
            raise ValueError(f"scores.max ({self.max}) must exceed scores.min ({self.min})")
        return self

    @property
    def labels(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class VerdictTokens(_Strict):
    """Surface forms of a yes and a no; the probabilities of the forms of each side are summed."""

    yes: tuple[str, ...] = ("Yes", "yes", "YES")
    no: tuple[str, ...] = ("No", "no", "NO")

    @model_validator(mode="after")
    def _disjoint(self) -> VerdictTokens:
        if not self.yes or not self.no:
            raise ValueError("verdict.yes and verdict.no each need at least one token")
        if set(self.yes) & set(self.no):
            raise ValueError("verdict.yes and verdict.no share a token")
        return self


class Reasoning(_Strict):
    """Reasoning-first judging: generate the reasoning, then read the verdict token's
    probabilities in a second step that continues the same conversation (prefix-cached)."""

    enabled: bool = False
    max_tokens: int = Field(256, ge=1, le=4096)
    verdict_prompt: str | None = Field(
        None,
        description="The user turn that asks for the final verdict after the reasoning; "
        "a default per mode is used when empty.",
    )


class Rubric(_Strict):
    """One judge: what it asks, how it reads the answer, how the answer becomes a reward."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    mode: Mode
    system: str | None = Field(None, description="Optional system message for the judge.")
    template: str = Field(
        min_length=1,
        description="The judge's user message. Placeholders {prompt}, {response}, {reference}, "
        "{metadata.KEY} are filled in one pass (braces in user text are safe).",
    )
    scores: ScoreScale = Field(default_factory=ScoreScale)
    verdict: VerdictTokens = Field(default_factory=VerdictTokens)
    reasoning: Reasoning = Field(default_factory=Reasoning)
    requires_reference: bool = Field(
        False, description="Items without a reference get status invalid_input."
    )
    min_valid_mass: float = Field(
        1e-4,
        ge=0,
        le=1,
        description="If the judge puts less probability than this on the valid tokens, the "
        "verdict is a judge_error, not a score.",
    )

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        try:
            check_template(self.template)
            if self.system:
                check_template(self.system)
        except TemplateError as exc:
            raise ValueError(str(exc)) from exc
        if "{criterion}" in self.template:
            raise ValueError("{criterion} is only meaningful in rubric mode")
        uses_reference = "{reference}" in self.template
        if self.requires_reference and not uses_reference:
            raise ValueError("requires_reference is set but the template never uses {reference}")
        return self

    @cached_property
    def version(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_CHARS]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def parse(cls, data: Any, *, source: str = "rubric") -> Rubric:
        """Validate raw data, turning pydantic's report into one readable ``RubricError``."""
        from pydantic import ValidationError

        if not isinstance(data, dict):
            raise RubricError(f"{source}: a rubric must be a mapping, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise RubricError(f"{source}: {problems}") from exc
