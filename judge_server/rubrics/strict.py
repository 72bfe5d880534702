"""The base of every rubric model: frozen (a rubric is a value, shared across requests) and
strict (a misspelt or misplaced key is an error, never silently ignored)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
