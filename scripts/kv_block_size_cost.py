"""What the KV block size costs where prompts share nothing: generation and unshared prefill.

Usage: python scripts/kv_block_size_cost.py BLOCK_SIZE  (0: the engine's default)
Starts the in-process engine on the embedded model (eager), then twice: 8 concurrent 128-token
generations of unique ~60-word prompts, and 32 unique ~300-word prompts with one verdict read
each. Run it once per size, alternating, and compare the seconds (README, Benchmark).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time

from judge_server.engines.factory import vllm_config
from judge_server.engines.vllm_engine import VllmEngine
from judge_server.settings import Settings

WORDS = "alpha beta gamma delta river stone cloud market window garden paper light".split()


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


async def measure(block_size: int | None) -> dict[str, list[float]]:
    engine = VllmEngine(vllm_config(Settings(kv_block_size=block_size, enforce_eager=True)))
    await engine.start()
    rng = random.Random(1)
    out: dict[str, list[float]] = {"generation_s": [], "prefill_s": []}
    try:
        await asyncio.gather(
            *(engine.generate(f"{i} {_words(rng, 50)}", max_tokens=8) for i in range(4))
        )
        for rep in range(2):
            prompts = [f"Story {rep}-{i}: {_words(rng, 60)}" for i in range(8)]
            started = time.perf_counter()
            await asyncio.gather(*(engine.generate(p, max_tokens=128) for p in prompts))
            out["generation_s"].append(round(time.perf_counter() - started, 2))
            prompts = [f"{rep}-{i} {_words(rng, 300)}" for i in range(32)]
            started = time.perf_counter()
            await asyncio.gather(*(engine.next_token_logprobs(p, ["yes", "no"]) for p in prompts))
            out["prefill_s"].append(round(time.perf_counter() - started, 2))
    finally:
        await engine.shutdown()
    return out


if __name__ == "__main__":
    size = int(sys.argv[1])
    figures = asyncio.run(measure(size or None))
    print(f"block size {size or 'default'}: {figures} (load {os.getloadavg()[0]:.2f})")
