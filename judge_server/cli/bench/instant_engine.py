"""An engine that answers at once with constant log-probabilities.

Behind the real app it leaves only the HTTP and judging layers to measure (the overhead section),
and it lets the benchmark's own plumbing be tested without vLLM.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from judge_server.engines.base import ChatMessage, Generation, JudgeEngine, NextTokenLogprobs

#: Generated text: what a generating judge answers when it follows the naive prompt.
INSTANT_GENERATION = "Score: 5"
#: Generated JSON (a JSON schema was asked for): one criterion, the shape rubric generation
#: asks for.
INSTANT_JSON = json.dumps(
    {
        "criteria": [
            {
                "id": "answers_the_request",
                "text": "The response answers what the user asked.",
                "kind": "principle",
                "weight": 1,
            }
        ]
    }
)


class InstantEngine(JudgeEngine):
    def __init__(self, max_model_len: int = 1 << 20) -> None:
        super().__init__()
        self.model_id = "instant-engine"
        self.max_model_len = max_model_len
        self._ready = False
        self.dead: str | None = None
        """Set to a reason to play an engine that died at run time."""

    async def start(self) -> None:
        self._ready = True

    async def shutdown(self) -> None:
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready and self.dead is None

    def dead_reason(self) -> str | None:
        return self.dead

    def render_chat(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        text = "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def single_token_id(self, text: str) -> int | None:
        # Any word is one token: every rubric's verdict and score tokens fit.
        if not text or text != text.strip() or len(text.split()) != 1:
            return None
        return zlib.crc32(text.encode()) & 0xFFFF

    async def next_token_logprobs(
        self, prompt: str, candidates: Sequence[str]
    ) -> NextTokenLogprobs:
        tokens = self.count_tokens(prompt)
        self._count("next_token", tokens, 0)
        share = math.log(0.9 / max(1, len(candidates)))
        return NextTokenLogprobs(
            logprobs=dict.fromkeys(candidates, share), num_prompt_tokens=tokens
        )

    async def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        json_schema: Mapping[str, Any] | None = None,
    ) -> Generation:
        tokens = self.count_tokens(prompt)
        self._count("generate", tokens, 0)
        text = INSTANT_GENERATION if json_schema is None else INSTANT_JSON
        return Generation(text=text, num_prompt_tokens=tokens, finish_reason="stop")

    async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
        return [math.log(0.5)] * self.count_tokens(continuation)
