"""The last transform every rubric applies to its reward."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from judge_server.rubrics.strict import StrictModel


class Shaping(StrictModel):
    """A last transform of the reward, clipped to [0, 1]."""

    kind: Literal["none", "power", "threshold", "affine"] = "none"
    exponent: float = Field(1.0, gt=0, description="power: reward ** exponent")
    threshold: float = Field(0.5, ge=0, le=1, description="threshold: 1 if reward >= t else 0")
    scale: float = Field(1.0, description="affine: scale * reward + offset")
    offset: float = 0.0

    def apply(self, reward: float) -> float:
        if self.kind == "power":
            reward = reward**self.exponent
        elif self.kind == "threshold":
            reward = 1.0 if reward >= self.threshold else 0.0
        elif self.kind == "affine":
            reward = self.scale * reward + self.offset
        return min(1.0, max(0.0, reward))
