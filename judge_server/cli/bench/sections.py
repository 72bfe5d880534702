"""The measured sections. Each takes what it measures (an engine, or a server's URL) and returns
figures; which engine or server that is, and when it starts and stops, is ``run``'s business."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from judge_server.cli.bench import http_load
from judge_server.cli.bench.workload import POINTWISE_NAME, parse_naive_score, short_items
from judge_server.engines.base import JudgeEngine
from judge_server.judges.pointwise import PointwiseSpec
from judge_server.judges.prompting import judge_messages

# Item numbers per section: no two sections share an item, so none warms another's caches
# (the cache section re-sends the warm-up batch on purpose).
WARMUP, CEILING, BATCH, CONCURRENT, NAIVE, OVERHEAD = 0, 100_000, 200_000, 300_000, 400_000, 500_000
NAIVE_MAX_TOKENS = 16
T = TypeVar("T")

CpuClock = Callable[[], float]
"""The measured server process's CPU seconds so far (``servers.Running.cpu_s``)."""


async def _with_cpu(cpu: CpuClock, n_items: int, work: Awaitable[T]) -> tuple[T, float]:
    """``work``'s result, and the server CPU time it took in microseconds per item."""
    before = cpu()
    result = await work
    return result, _us_per_item(cpu() - before, n_items)


def _us_per_item(seconds: float, n_items: int) -> float:
    return seconds * 1e6 / n_items


@dataclass(frozen=True)
class Sizes:
    throughput_items: int
    """Items per engine-bound throughput section (ceiling, batch, concurrent, naive)."""
    cache_repeats: int
    """How many times the cached batch is sent again."""
    overhead_items: int
    rubric_items: int
    rubric_sentences: int = 80
    batch_size: int = 64
    clients: int = 64
    warmup_items: int = 16
    """Warm-up of the in-process engine and of the stock server (judge-server's is one batch)."""
    generation_runs: int = 3
    """Rubrics generated (after one warm-up) for the seconds-per-rubric figure."""
    engine_runs: int = 2
    """Runs of the ceiling, server batch and server concurrent sections (each on fresh items),
    and of the overhead and bare framework sections (alternated, each going first in turn):
    the fastest run is the figure, the least disturbed by whatever else the machine ran (the
    server and client CPU per item of those two: the median of the runs); every run's rate is
    in the JSON beside it (``*_runs_items_per_s``) to show the spread."""


# --quick: about 9 minutes on a 2-core CPU with the embedded model (each run of an engine-bound
# section of 64 items takes 25-35 s there, each engine start about 30 s).
# The HTTP-bound sections (overhead, bare framework, cache hits) send thousands of items: the
# bare route answers tens of thousands a second, and a run must last long enough (a second or
# more on the slower paths) that start-up and clock ticks do not decide it.
QUICK = Sizes(throughput_items=64, cache_repeats=256, overhead_items=16384, rubric_items=4)
FULL = Sizes(
    throughput_items=512,
    cache_repeats=1024,
    overhead_items=65536,
    rubric_items=32,
    generation_runs=8,
)


async def engine_ceiling(
    engine: JudgeEngine, rubric: PointwiseSpec, sizes: Sizes
) -> dict[str, Any]:
    """The engine alone: every judge prompt's one-token forward pass issued at once."""
    candidates = [str(s) for s in rubric.scores.labels]

    def prompts(start: int, n: int) -> list[str]:
        return [engine.render_chat(judge_messages(rubric, i)) for i in short_items(n, start)]

    await asyncio.gather(
        *(engine.next_token_logprobs(p, candidates) for p in prompts(WARMUP, sizes.warmup_items))
    )
    n = sizes.throughput_items
    rates: list[float] = []
    before = engine.stats.prompt_tokens
    for run in range(sizes.engine_runs):
        await engine.reset_prefix_cache()
        timed = prompts(CEILING + run * n, n)
        started = time.perf_counter()
        await asyncio.gather(*(engine.next_token_logprobs(p, candidates) for p in timed))
        rates.append(n / (time.perf_counter() - started))
    return {
        **_best("engine_ceiling_items_per_s", rates),
        "prompt_tokens_per_item": (engine.stats.prompt_tokens - before) / (n * len(rates)),
    }


def _best(key: str, rates: list[float]) -> dict[str, Any]:
    """The fastest run under ``key``, every run under ``key`` with ``_runs`` in it."""
    return {key: max(rates), key.replace("_items_per_s", "_runs_items_per_s"): rates}


async def server_warmup(http: aiohttp.ClientSession, base_url: str, sizes: Sizes) -> None:
    """One batch scored with the result cache on: it warms the server up, and it is the batch
    that ``cache_hits`` sends again."""
    await http_load.batches(
        http,
        base_url,
        POINTWISE_NAME,
        short_items(sizes.batch_size, WARMUP),
        batch_size=sizes.batch_size,
        cache=True,
    )


async def server_batch(http: aiohttp.ClientSession, base_url: str, sizes: Sizes) -> dict[str, Any]:
    """Batches of ``batch_size`` items, all in flight at once, result cache off."""
    n = sizes.throughput_items

    async def run(first: int) -> float:
        items = short_items(n, first)
        load = http_load.batches(
            http, base_url, POINTWISE_NAME, items, batch_size=sizes.batch_size, cache=False
        )
        return (await load).elapsed_s

    rates = [n / await run(BATCH + i * n) for i in range(sizes.engine_runs)]
    return _best("server_batch_items_per_s", rates)


async def server_concurrent(
    http: aiohttp.ClientSession, base_url: str, sizes: Sizes
) -> dict[str, Any]:
    """``clients`` concurrent clients sending one item per request, result cache off."""
    n = sizes.throughput_items

    async def run(first: int) -> float:
        items = short_items(n, first)
        load = http_load.single_item_clients(
            http, base_url, POINTWISE_NAME, items, clients=sizes.clients, cache=False
        )
        return (await load).elapsed_s

    rates = [n / await run(CONCURRENT + i * n) for i in range(sizes.engine_runs)]
    return _best("server_concurrent_items_per_s", rates)


async def cache_hits(
    http: aiohttp.ClientSession, base_url: str, sizes: Sizes, cpu: CpuClock
) -> dict[str, Any]:
    """The batch ``server_warmup`` scored, sent again ``cache_repeats`` times (all in flight at
    once), cache on: every item must come back a hit."""
    repeated = short_items(sizes.batch_size, WARMUP) * sizes.cache_repeats
    load = http_load.batches(
        http, base_url, POINTWISE_NAME, repeated, batch_size=sizes.batch_size, cache=True
    )
    timed, cpu_us = await _with_cpu(cpu, len(repeated), load)
    misses = sum(1 for r in timed.results if not r["cached"])
    if misses:
        raise RuntimeError(f"cache section: {misses} of {len(timed.results)} repeated items missed")
    return {
        "cache_hit_items_per_s": len(repeated) / timed.elapsed_s,
        "cache_hit_server_cpu_us_per_item": cpu_us,
        "cache_hit_client_cpu_us_per_item": _us_per_item(timed.client_cpu_s, len(repeated)),
    }


@dataclass(frozen=True)
class PathRun:
    """One run of the overhead or bare framework path."""

    items_per_s: float
    server_cpu_us: float
    client_cpu_us: float
    """The load generator's (this process's) CPU per item: above the server's, it bounded the
    rate."""


async def _overhead_batches(
    http: aiohttp.ClientSession, base_url: str, sizes: Sizes, cpu: CpuClock
) -> PathRun:
    """After a warm-up batch, ``overhead_items`` items in batches, cache off."""
    await server_warmup(http, base_url, sizes)
    load = http_load.batches(
        http,
        base_url,
        POINTWISE_NAME,
        short_items(sizes.overhead_items, OVERHEAD),
        batch_size=sizes.batch_size,
        cache=False,
    )
    n = sizes.overhead_items
    timed, cpu_us = await _with_cpu(cpu, n, load)
    return PathRun(n / timed.elapsed_s, cpu_us, _us_per_item(timed.client_cpu_s, n))


Endpoint = tuple[str, CpuClock]
"""A server's base URL and its CPU clock."""


async def overhead_beside_bare(
    http: aiohttp.ClientSession, judge: Endpoint, bare: Endpoint, sizes: Sizes
) -> dict[str, Any]:
    """The HTTP and judging layers alone (the real app on the instant engine) and the
    framework's ceiling (``instant_server --mode bare``: a bare FastAPI route that parses the
    body and answers the same shape), the same batches against each, ``engine_runs`` pairs of
    runs, which goes first alternating from pair to pair (neither always runs on the machine
    the other just warmed or disturbed): the fastest run of each is its rate, the median of
    its runs its server CPU (and client CPU) per item. Then single-item requests from
    ``clients`` concurrent clients to the real app."""
    judged: list[PathRun] = []
    framework: list[PathRun] = []
    for pair in range(sizes.engine_runs):
        order = [(judge, judged), (bare, framework)]
        for (url, cpu), runs in order if pair % 2 == 0 else reversed(order):
            runs.append(await _overhead_batches(http, url, sizes, cpu))
    singles = short_items(max(1, sizes.overhead_items // 4), OVERHEAD)
    single = await http_load.single_item_clients(
        http, judge[0], POINTWISE_NAME, singles, clients=sizes.clients, cache=False
    )
    return {
        **_path_figures("overhead", judged),
        "overhead_single_item_requests_per_s": len(singles) / single.elapsed_s,
        **_path_figures("bare_framework", framework),
    }


def _path_figures(path: str, runs: list[PathRun]) -> dict[str, Any]:
    """The fastest run's rate, every run's rate, the median CPU per item of server and client."""
    return {
        f"{path}_items_per_s": max(r.items_per_s for r in runs),
        f"{path}_runs_items_per_s": [r.items_per_s for r in runs],
        f"{path}_server_cpu_us_per_item": statistics.median(r.server_cpu_us for r in runs),
        f"{path}_client_cpu_us_per_item": statistics.median(r.client_cpu_us for r in runs),
    }


async def naive_baseline(
    http: aiohttp.ClientSession, base_url: str, model: str, sizes: Sizes
) -> dict[str, Any]:
    """A stock OpenAI-compatible server, one chat completion per sample from ``clients``
    concurrent clients, "Score: N" parsed from the text."""
    await http_load.naive_chat_clients(
        http,
        base_url,
        model,
        short_items(sizes.warmup_items, WARMUP),
        clients=sizes.clients,
        max_tokens=NAIVE_MAX_TOKENS,
    )
    items = short_items(sizes.throughput_items, NAIVE)
    elapsed, texts = await http_load.naive_chat_clients(
        http, base_url, model, items, clients=sizes.clients, max_tokens=NAIVE_MAX_TOKENS
    )
    failures = [t for t in texts if parse_naive_score(t) is None]
    return {
        "naive_baseline_items_per_s": len(items) / elapsed,
        "naive_parse_failures": len(failures),
        "naive_items": len(items),
        "naive_failure_example": failures[0][:80] if failures else None,
    }
