"""Cost of k criteria against one on the same responses (the prefix cache's work), on long
responses (a shared prefix of many cache blocks) and on short ones (about 125 tokens: the part
of the shared prefix past its last whole prefix-cache block, up to 31 tokens with the CPU default
of 32, all of it with vLLM-CPU's own 128, is computed again for every criterion)."""

from __future__ import annotations

import time
from typing import Any

from judge_server.cli.bench.workload import SHORT_RESPONSE_SENTENCES, criteria_rubric, items
from judge_server.service import JudgeService


async def timed_rubric(
    service: JudgeService, k: int, n_items: int, sentences: int
) -> dict[str, Any]:
    engine = service.engine
    await engine.reset_prefix_cache()  # no run may warm the next
    batch = items(n_items, sentences)
    judge = service.judge_for(criteria_rubric(k))
    before_prompt = engine.stats.prompt_tokens
    before_cached = engine.stats.cached_prompt_tokens
    started = time.perf_counter()
    results = await service.score(judge, batch, timeout_s=3600, use_cache=False)
    elapsed = time.perf_counter() - started
    failed = [r for r in results if r.status != "ok"]
    if failed:
        raise RuntimeError(f"benchmark items failed: {failed[0].status}: {failed[0].error}")
    return {
        "seconds": elapsed,
        "prompt_tokens": engine.stats.prompt_tokens - before_prompt,
        "cached_prompt_tokens": engine.stats.cached_prompt_tokens - before_cached,
    }


async def _k1_vs_k8(
    service: JudgeService, prefix: str, *, n_items: int, sentences: int
) -> dict[str, Any]:
    await timed_rubric(service, 1, 2, sentences)  # warm-up: compile paths, allocator
    k1 = await timed_rubric(service, 1, n_items, sentences)
    k8 = await timed_rubric(service, 8, n_items, sentences)
    return {
        f"{prefix}_prompt_tokens_per_call_k1": k1["prompt_tokens"] / n_items,
        f"{prefix}_k1_s": k1["seconds"],
        f"{prefix}_k8_s": k8["seconds"],
        f"{prefix}_k8_cached_fraction": k8["cached_prompt_tokens"] / max(1, k8["prompt_tokens"]),
    }


async def rubric_k1_vs_k8(
    service: JudgeService, *, n_items: int, sentences: int
) -> dict[str, Any]:
    """``rubric_*`` on responses of ``sentences`` sentences, ``rubric_short_*`` on the
    throughput sections' short ones."""
    return {
        "rubric_items": n_items,
        **await _k1_vs_k8(service, "rubric", n_items=n_items, sentences=sentences),
        **await _k1_vs_k8(
            service, "rubric_short", n_items=n_items, sentences=SHORT_RESPONSE_SENTENCES
        ),
    }
