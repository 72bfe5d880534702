"""Load generators: batches over HTTP, N concurrent single-item clients, naive chat clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from judge_server.cli.bench.workload import item_json, naive_messages
from judge_server.judges import JudgeItem

REQUEST_TIMEOUT_S = 3600.0


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
    )


async def _score(
    http: httpx.AsyncClient, base_url: str, rubric: str, batch: Sequence[JudgeItem], cache: bool
) -> list[dict[str, Any]]:
    resp = await http.post(
        f"{base_url}/v1/score",
        json={
            "rubric": rubric,
            "items": [item_json(i) for i in batch],
            "options": {"cache": cache, "timeout_s": REQUEST_TIMEOUT_S},
        },
    )
    if resp.status_code != 200:
        raise RuntimeError(f"POST /v1/score: HTTP {resp.status_code}: {resp.text[:500]}")
    results: list[dict[str, Any]] = resp.json()["results"]
    bad = [r for r in results if r["status"] != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} benchmark items failed: {bad[0]['status']}: {bad[0]}")
    return results


async def batches(
    http: httpx.AsyncClient,
    base_url: str,
    rubric: str,
    items: Sequence[JudgeItem],
    *,
    batch_size: int,
    cache: bool,
) -> tuple[float, list[dict[str, Any]]]:
    """Every batch of ``batch_size`` items in flight at once; (seconds, results)."""
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    started = time.perf_counter()
    answers = await asyncio.gather(*(_score(http, base_url, rubric, c, cache) for c in chunks))
    elapsed = time.perf_counter() - started
    return elapsed, [r for answer in answers for r in answer]


async def single_item_clients(
    http: httpx.AsyncClient,
    base_url: str,
    rubric: str,
    items: Sequence[JudgeItem],
    *,
    clients: int,
    cache: bool,
) -> float:
    """``clients`` concurrent clients, each sending one item per request until none is left."""
    queue: Iterator[JudgeItem] = iter(items)

    async def worker() -> None:
        for item in queue:  # shared iterator: each item goes to exactly one client
            await _score(http, base_url, rubric, [item], cache)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started


async def naive_chat_clients(
    http: httpx.AsyncClient,
    base_url: str,
    model: str,
    items: Sequence[JudgeItem],
    *,
    clients: int,
    max_tokens: int,
) -> tuple[float, list[str]]:
    """What users write today: one chat completion per sample, the score parsed from text."""
    texts: dict[str, str] = {}
    queue: Iterator[JudgeItem] = iter(items)

    async def worker() -> None:
        for item in queue:
            resp = await http.post(
                f"{base_url}/v1/chat/completions",
                json={
                    "model": model,
                    "messages": naive_messages(item),
                    "max_tokens": max_tokens,
                    "temperature": 0.0,
                },
            )
            resp.raise_for_status()
            texts[item.id] = str(resp.json()["choices"][0]["message"]["content"] or "")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return elapsed, [texts[item.id] for item in items]
