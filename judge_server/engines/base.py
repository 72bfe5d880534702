"""The engine seam: the few primitives every judge is built from.

Judges never see vLLM. They render chat messages to a prompt string with the judge model's
chat template (message content stays plain text: only the template makes control tokens, see
``engines.plain_text``) and then ask for one of three things:

- ``next_token_logprobs``: one forward pass (``max_tokens=1``) returning the log-probabilities of
  a few candidate tokens at the next position (verdict tokens, score digits);
- ``generate``: text generation (reasoning-first judges), optionally held to a JSON schema
  (rubric generation: vLLM's structured output, so the text is JSON of that shape);
- ``continuation_logprobs``: the log-probability of each token of a continuation given a prefix
  (likelihood rewards, from ``prompt_logprobs``).

Errors are split the way vLLM splits them: a per-request problem (``PromptTooLongError``) is the
caller's item's fault and leaves the engine healthy; ``EngineDeadError`` means nothing more can be
served.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from judge_server.engines import usage


class ChatMessage(TypedDict):
    role: str
    content: str


class EngineError(Exception):
    """The engine could not produce a result for this request."""


class PromptTooLongError(EngineError):
    """The prompt does not fit the model's context window (the item's fault, not the engine's)."""

    def __init__(self, num_tokens: int, limit: int) -> None:
        super().__init__(f"prompt has {num_tokens} tokens, the judge model accepts at most {limit}")
        self.num_tokens = num_tokens
        self.limit = limit


class EngineDeadError(EngineError):
    """The engine process died; no further request can be served."""


@dataclass(frozen=True)
class NextTokenLogprobs:
    """Log-probabilities of candidate tokens at the position right after the prompt."""

    logprobs: dict[str, float]
    """Candidate surface string -> natural-log probability under the full vocabulary."""
    num_prompt_tokens: int
    num_cached_tokens: int = 0


@dataclass(frozen=True)
class Generation:
    text: str
    num_prompt_tokens: int
    num_cached_tokens: int = 0
    finish_reason: str | None = None


@dataclass
class EngineStats:
    """Counters an engine keeps for /metrics (prefix-cache hits above all)."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class JudgeEngine(abc.ABC):
    """What a judge needs from a language model. Adapters: vLLM in-process (default)."""

    #: the id every response names, so a reward is traceable to the model that produced it
    model_id: str
    max_model_len: int
    #: what the model is, from its content (``engines.model_identity``), set by ``start``; cache
    #: keys use it so no cached reward outlives the weights behind it. None: not known.
    model_revision: str | None = None
    #: the model's image placeholder token, set by ``start`` for a vision-language model
    #: (``engines.images``); None: the model takes text only
    image_token_id: int | None = None
    #: the prompt positions one image takes once vLLM expands its placeholder (a lower
    #: bound, from the model config: ``engines.images.image_feature_tokens``)
    image_features: int = 1

    def __init__(self) -> None:
        self.stats = EngineStats()

    @property
    def takes_images(self) -> bool:
        return self.image_token_id is not None

    @abc.abstractmethod
    async def start(self) -> None:
        """Load the model. Slow (tens of seconds); call once."""

    @abc.abstractmethod
    async def shutdown(self) -> None: ...

    @property
    @abc.abstractmethod
    def ready(self) -> bool: ...

    @abc.abstractmethod
    def render_chat(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        """Apply the judge model's chat template."""

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` as plain text (no special tokens added or matched)."""

    @abc.abstractmethod
    def single_token_id(self, text: str) -> int | None:
        """The token id if ``text`` is exactly one token of this model's vocabulary, else None."""

    @abc.abstractmethod
    async def next_token_logprobs(
        self, prompt: str, candidates: Sequence[str]
    ) -> NextTokenLogprobs: ...

    @abc.abstractmethod
    async def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        json_schema: Mapping[str, Any] | None = None,
    ) -> Generation:
        """Up to ``max_tokens`` tokens after ``prompt``. With ``json_schema`` the engine
        constrains decoding so the text is JSON valid against it (unless cut off at
        ``max_tokens``: ``finish_reason`` is then ``"length"``)."""

    @abc.abstractmethod
    async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
        """Log-probability of each token of ``continuation`` (plain text) given ``prompt``."""

    def dead_reason(self) -> str | None:
        """Why this engine can serve nothing more (it died after it started), else None.

        The server's watchdog polls it about once a second once the engine is up; a reason
        ends the process, so an orchestrator restarts it. Cheap and non-blocking. An engine
        that recovers on its own (remote replicas coming back) keeps answering None.
        """
        return None

    async def reset_prefix_cache(self) -> None:  # noqa: B027 (optional: not every engine caches)
        """Forget cached prefixes (benchmarks use it so one run cannot warm the next)."""

    def candidate_ids(self, candidates: Sequence[str]) -> dict[str, int]:
        """Candidate -> token id; every candidate must be one token of this model."""
        ids: dict[str, int] = {}
        for cand in candidates:
            tid = self.single_token_id(cand)
            if tid is None:
                raise EngineError(f"candidate {cand!r} is not a single token of {self.model_id}")
            ids[cand] = tid
        return ids

    def check_length(self, tokens: list[int], reserve: int = 1, images: int = 0) -> list[int]:
        """``tokens`` if they fit the context with ``reserve`` tokens to spare, each of the
        prompt's ``images`` placeholders counted as the ``image_features`` it expands to."""
        length = len(tokens) + images * (self.image_features - 1)
        if length + reserve > self.max_model_len:
            raise PromptTooLongError(length, self.max_model_len - reserve)
        return tokens

    def as_content(self, text: str) -> str:
        """``text`` as it appears in a prompt ``render_chat`` made of a message holding it
        (engines that escape control-token strings in content, ``engines.plain_text``, differ)."""
        return text

    def _count(self, kind: str, prompt_tokens: int, cached_tokens: int) -> None:
        usage.record(prompt_tokens, cached_tokens)
        self.stats.requests += 1
        self.stats.prompt_tokens += prompt_tokens
        self.stats.cached_prompt_tokens += cached_tokens
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1


class RewardModel(abc.ABC):
    """A reward model on vLLM's pooling runner: a scalar (Bradley-Terry) one gives a rendered
    conversation one raw logit (``reward``); a process reward model gives each step of the
    assistant's turn its label probabilities (``step_scores``).

    A separate seam from ``JudgeEngine``: it is a classification model served by vLLM's
    pooling runner, not a generative judge.
    """

    #: the id responses and cache keys name, so a reward is traceable to the model behind it
    model_id: str
    max_model_len: int
    #: the content identity, as ``JudgeEngine.model_revision``
    model_revision: str | None = None

    @abc.abstractmethod
    async def start(self) -> None:
        """Load the model. Slow (tens of seconds); call once."""

    @abc.abstractmethod
    async def shutdown(self) -> None: ...

    @property
    @abc.abstractmethod
    def ready(self) -> bool: ...

    @abc.abstractmethod
    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        """Apply the reward model's own chat template to a finished conversation."""

    def dead_reason(self) -> str | None:
        """Why this model can serve nothing more (it died after it started), else None."""
        return None

    @abc.abstractmethod
    async def reward(self, text: str) -> float:
        """The raw scalar the model's value head gives ``text`` (no activation applied)."""

    async def step_scores(
        self, messages: Sequence[ChatMessage], steps: Sequence[str], step_tag: str
    ) -> list[list[float]]:
        """A process reward model's label probabilities at ``step_tag`` after each of
        ``steps`` (the assistant's turn after ``messages``): one row per step, in order. The
        tag must be one token of the model; item text never makes it (``engines.step_tags``)."""
        raise EngineError(f"{self.model_id} is not a process reward model")
