"""What judging one item cost the engine: prompt tokens, prefix-cached prompt tokens, calls.

Scoring opens a ``Usage`` for each item (``measure``); every engine call made while that item is
judged adds to it (``record``), in the item's own task or in any task it starts, since a task
copies its creator's context. A call made for another item (an identical one already in flight,
whose result is shared) counts for that item only; a result-cache hit costs nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    engine_calls: int = 0

    def copy(self) -> Usage:
        return Usage(self.prompt_tokens, self.cached_prompt_tokens, self.engine_calls)

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.cached_prompt_tokens += other.cached_prompt_tokens
        self.engine_calls += other.engine_calls


_current: ContextVar[Usage | None] = ContextVar("judge_server_usage", default=None)


def record(prompt_tokens: int, cached_tokens: int) -> None:
    """One engine call: add it to the usage being measured, if any."""
    usage = _current.get()
    if usage is not None:
        usage.prompt_tokens += prompt_tokens
        usage.cached_prompt_tokens += cached_tokens
        usage.engine_calls += 1


class measure:  # lower case: it reads as the function it replaced, ``with measure() as usage``
    """Count the engine calls made inside the block (and in tasks it starts). A class, not a
    generator: it is entered once per item judged."""

    __slots__ = ("_token", "usage")

    def __init__(self) -> None:
        self.usage = Usage()

    def __enter__(self) -> Usage:
        self._token = _current.set(self.usage)
        return self.usage

    def __exit__(self, *_exc: object) -> None:
        _current.reset(self._token)
