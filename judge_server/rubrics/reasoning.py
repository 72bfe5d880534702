"""Reasoning-first judging, shared by every mode that reads a verdict token."""

from __future__ import annotations

from pydantic import Field

from judge_server.rubrics.strict import StrictModel


class Reasoning(StrictModel):
    """Reasoning-first judging: generate the reasoning, then read the verdict token's
    probabilities in a second step that continues the same conversation (prefix-cached)."""

    enabled: bool = False
    max_tokens: int = Field(256, ge=1, le=4096)
    verdict_prompt: str | None = Field(
        None,
        description="The user turn that asks for the final verdict after the reasoning; "
        "a default per mode is used when empty.",
    )
