"""The answers a judge may give: score digits, yes/no forms, pairwise labels.

Each surface form must be one token of the judge model: the verdict is read off the next-token
probabilities in one forward pass.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from judge_server.rubrics.strict import StrictModel


class ScoreScale(StrictModel):
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


class VerdictTokens(StrictModel):
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


class PairTokens(StrictModel):
    """Pairwise verdict tokens: surface forms meaning 'A is better' and 'B is better'."""

    a: tuple[str, ...] = ("A",)
    b: tuple[str, ...] = ("B",)

    @model_validator(mode="after")
    def _disjoint(self) -> PairTokens:
        if not self.a or not self.b or set(self.a) & set(self.b):
            raise ValueError("pair.a and pair.b need distinct, non-empty token lists")
        return self
