"""The reward-model adapter on vLLM's pooling runner: scalar (Bradley-Terry) heads and step-tag
process reward models. Shares the engine lifetime (start, death, shutdown) with ``VllmEngine``."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from judge_server.engines import step_tags, usage
from judge_server.engines.base import ChatMessage, EngineError, PromptTooLongError, RewardModel
from judge_server.engines.config import VllmConfig
from judge_server.engines.plain_text import PlainTextTokenizer
from judge_server.engines.vllm_engine import VllmLifetime, start_async_llm

log = logging.getLogger(__name__)


class VllmRewardModel(VllmLifetime, RewardModel):
    """A sequence-classification reward model (``*ForSequenceClassification``, ``num_labels=1``,
    the Skywork-Reward-V2 kind) on vLLM's pooling runner.

    The ``classify`` task pools the last token through the model's ``score`` head; vLLM applies a
    sigmoid to a one-label head unless ``use_activation=False``, and a Bradley-Terry reward is
    the raw logit, so the activation is turned off here and shaping is left to the judge.

    A process reward model gets STEP token pooling and answers ``step_scores`` (engines.step_tags).

    ``config`` is the judge engine's (its ``model`` and ``gpu_memory_utilization`` are not
    used); ``gpu_memory_utilization`` is this model's own share of the GPU, which must leave room
    for the judge's.
    """

    what = "reward model"

    def __init__(self, path: str, config: VllmConfig, *, gpu_memory_utilization: float) -> None:
        super().__init__()
        self.config = config
        self.gpu_memory_utilization = gpu_memory_utilization
        self.model_path = path
        self.model_id = path
        self.max_model_len = config.max_model_len
        self.process = False  # known once started: a process reward model (step scores)

    async def start(self) -> None:
        self.process = await asyncio.to_thread(step_tags.is_process_reward_model, self.model_path)
        await self._start_built()
        log.info("vLLM reward model ready: %s (process: %s)", self.model_id, self.process)

    def _build(self) -> tuple[Any, PlainTextTokenizer]:
        extra: dict[str, Any] = {}
        if self.process:  # STEP pooling for PRMs only (see step_tags.is_process_reward_model)
            from vllm.config import PoolerConfig

            extra["pooler_config"] = PoolerConfig(tok_pooling_type="STEP")
        # convert stays "auto": a *ForSequenceClassification folder becomes a classifier, and a
        # plain causal LM is refused rather than given an untrained head.
        return start_async_llm(
            self.config, self.model_path, gpu_share=self.gpu_memory_utilization,
            runner="pooling", **extra,
        )  # fmt: skip

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        return self._tok().render(messages, add_generation_prompt=False)

    async def reward(self, text: str) -> float:
        from vllm import PoolingParams

        if self.process:
            raise EngineError(f"{self.model_id} is a process reward model: it scores steps")
        tokens = await self._tok().encode_async(text)
        final = await self._pool(tokens, PoolingParams(task="classify", use_activation=False))
        data = final.outputs.data
        if data.numel() != 1:
            raise EngineError(
                f"{self.model_id} has {data.numel()} labels; a reward model needs exactly one"
            )
        return float(data.reshape(-1)[0])

    async def step_scores(
        self, messages: Sequence[ChatMessage], steps: Sequence[str], step_tag: str
    ) -> list[list[float]]:
        from vllm import PoolingParams

        tok = self._tok()  # not started: an error before the kind is known
        if not self.process:
            raise EngineError(f"{self.model_id} is a scalar reward model: it scores no steps")
        tag_id = tok.single_token_id(step_tag)
        if tag_id is None:
            raise EngineError(f"step tag {step_tag!r} is not one token of {self.model_id}")
        tokens, tags = await asyncio.to_thread(step_tags.tagged, tok, messages, steps, tag_id)
        params = PoolingParams(task="token_classify", step_tag_id=tag_id)
        rows = (await self._pool(tokens, params)).outputs.data.tolist()
        return step_tags.rows_at_tags(tokens, tags, tag_id, rows)

    async def _pool(self, tokens: list[int], params: Any) -> Any:
        from vllm.inputs import TokensPrompt

        llm = self._started_llm()
        if len(tokens) > self.max_model_len:
            raise PromptTooLongError(len(tokens), self.max_model_len)
        prompt = TokensPrompt(prompt_token_ids=tokens)
        final = await self._output(llm.encode(prompt, params, request_id=uuid.uuid4().hex))
        usage.record(len(tokens), int(final.num_cached_tokens or 0))
        return final
