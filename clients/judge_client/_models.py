"""Pydantic models mirroring the judge-server v1 wire contract.

Request models forbid unknown fields so typos fail on the client; response models allow
them so that a newer server does not break an older client.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

__all__ = ["ItemResult", "Message", "RubricRef", "ScoreItem", "ScoreResponse", "Usage"]


class Message(BaseModel):
    """One chat message of a prompt, as chat templates take it.

    Any role is sent (``tool``, ``developer``, ...), and so are extra keys such as
    ``tool_calls``; ``content`` may be text, OpenAI-style content parts, or ``None``. The server
    decides per item what it can judge: a message it cannot take fails only its own item, with
    status ``invalid_input``.
    """

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ScoreItem(BaseModel):
    """One (prompt, response) pair to judge.

    ``id`` may be left out: the client then uses the item's position in the batch
    (``"0"``, ``"1"``, ...). Ids must be unique within one ``score`` call.
    """

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    prompt: str | list[Message]
    response: str
    reference: str | None = None
    metadata: dict[str, Any] | None = None
    rubrics: list[dict[str, Any]] | None = None
    """Instance criteria, for a rubric that takes them (such as ``healthbench``): HealthBench's
    ``{"criterion", "points", "tags"}`` or the rubric format ``{"id", "text", "weight"}``."""

    @field_validator("id", mode="before")
    @classmethod
    def _int_id_as_text(cls, value: Any) -> Any:
        # Trainers often key samples by integer index; the server accepts those too.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class RubricRef(BaseModel):
    """The rubric a response was scored with; ``version`` is a content hash."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str


class Usage(BaseModel):
    """What judging cost the server's engine, for cost accounting.

    ``engine_calls`` is 0 for a cached result or one shared with an identical item judged at
    the same time; ``cached_prompt_tokens`` are the prompt tokens served from the engine's
    prefix cache. Usages add up: ``a + b``.
    """

    model_config = ConfigDict(extra="allow")

    prompt_tokens: int
    cached_prompt_tokens: int
    engine_calls: int

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            engine_calls=self.engine_calls + other.engine_calls,
        )


class ItemResult(BaseModel):
    """The verdict on one item.

    ``status`` is one of ``ok``, ``invalid_input``, ``judge_error``, ``timeout`` (kept a
    plain string so new statuses do not break parsing). ``reward`` is ``None`` unless
    the item was judged; a failure is never reported as a reward of 0. ``usage`` is
    ``None`` from a server that does not report it (before usage was added to the wire).
    """

    model_config = ConfigDict(extra="allow")

    id: str
    status: str
    reward: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    cached: bool = False
    error: str | None = None
    usage: Usage | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.reward is not None


class ScoreResponse(BaseModel):
    """The answer to ``score``, results in the order the items were given.

    ``retries`` is client-side bookkeeping, not part of the wire format: the number of
    retried HTTP requests this response took, summed over all chunks.
    """

    model_config = ConfigDict(extra="allow")

    rubric: RubricRef
    model: str
    results: list[ItemResult]

    _retries: int = PrivateAttr(default=0)

    @property
    def retries(self) -> int:
        return self._retries

    @property
    def total_usage(self) -> Usage | None:
        """The usage of every result summed (over all chunks); ``None`` unless every result
        reports its usage, rather than a total that leaves some out."""
        usages = [result.usage for result in self.results if result.usage is not None]
        if not usages or len(usages) != len(self.results):
            return None
        return sum(usages, Usage(prompt_tokens=0, cached_prompt_tokens=0, engine_calls=0))
