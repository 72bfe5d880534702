"""A scripted fake at the engine seam, for unit tests of prompts, arithmetic and statuses.

It is never the only test of a feature: tests/integration runs the same paths on real vLLM.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from judge_server.cli.bench.instant_engine import InstantEngine
from judge_server.engines.base import (
    EngineError,
    Generation,
    NextTokenLogprobs,
    PromptTooLongError,
)

VOCAB = [str(d) for d in range(10)] + ["Yes", "No", "yes", "no", "A", "B"]

Script = Callable[[str, Sequence[str]], dict[str, float]]
"""(prompt, candidates) -> candidate -> probability (need not sum to 1; the rest is 'other')."""


def uniform(_: str, candidates: Sequence[str]) -> dict[str, float]:
    return {c: 1.0 / len(candidates) for c in candidates}


class ScriptedEngine(InstantEngine):
    """The benchmark's instant engine, with scripted verdicts, a small vocabulary, recorded
    prompts and failure triggers."""

    def __init__(
        self,
        script: Script = uniform,
        *,
        max_model_len: int = 4096,
        delay_s: float = 0.0,
        generation: str = "Some reasoning.",
    ) -> None:
        super().__init__(max_model_len)
        self.model_id = "fake-judge"
        self.script = script
        self.delay_s = delay_s
        self.generation = generation
        self.prompts: list[str] = []
        self.schemas: list[Mapping[str, Any] | None] = []
        """The JSON schema of each ``generate`` call (None: free text)."""

    def die(self, reason: str = "scripted engine death") -> None:
        """Die at run time: the watchdog sees ``dead_reason``; calls in flight keep hanging
        (the worst case: the server must fail them itself)."""
        self.dead = reason

    def single_token_id(self, text: str) -> int | None:
        return VOCAB.index(text) if text in VOCAB else None

    def _check(self, prompt: str) -> None:
        # one "token" per character keeps length arithmetic obvious in tests
        if len(prompt) + 1 > self.max_model_len:
            raise PromptTooLongError(len(prompt), self.max_model_len - 1)
        if "ENGINE-FAIL" in prompt:
            raise EngineError("scripted engine failure")

    async def next_token_logprobs(
        self, prompt: str, candidates: Sequence[str]
    ) -> NextTokenLogprobs:
        self._check(prompt)
        self.prompts.append(prompt)
        if self.delay_s or "SLOW" in prompt:
            await asyncio.sleep(self.delay_s or 10.0)
        probs = self.script(prompt, candidates)
        logprobs = {c: math.log(p) if p > 0 else -math.inf for c, p in probs.items()}
        self._count("next_token", len(prompt), 0)
        return NextTokenLogprobs(logprobs=logprobs, num_prompt_tokens=len(prompt))

    async def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        json_schema: Mapping[str, Any] | None = None,
    ) -> Generation:
        self._check(prompt)
        self.prompts.append(prompt)
        self.schemas.append(json_schema)
        self._count("generate", len(prompt), 0)
        cut = len(self.generation) > max_tokens
        return Generation(
            text=self.generation[:max_tokens],
            num_prompt_tokens=len(prompt),
            finish_reason="length" if cut else "stop",
        )

    async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
        self._check(prompt + continuation)
        self._count("continuation", len(prompt + continuation), 0)
        return [math.log(0.5)] * len(continuation)
