"""Load generators: batches over HTTP, N concurrent single-item clients, naive chat clients.

The load generator must cost the bench process less CPU per item than the server it measures,
or it, not the server, bounds the rate: aiohttp on one session of at most 256 connections (httpx
cost about 300 us of client CPU per item, more than a bare FastAPI route's whole serving cost),
every request body JSON-encoded to bytes before the clock starts, answers decoded with orjson
(the standard library's ``json.loads`` alone took about 13 us per item of a 64-item answer),
the garbage collector off while the clock runs. Each load reports this process's own CPU time
over its timed region beside the wall time, so a reader can tell.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from judge_server.cli.bench.workload import item_json, naive_messages
from judge_server.judges import JudgeItem

REQUEST_TIMEOUT_S = 3600.0
_JSON = {"content-type": "application/json"}


def client() -> aiohttp.ClientSession:
    """One session for a whole section: connections are kept and reused."""
    return aiohttp.ClientSession(
        # 256 sockets at most (a full run has 1,024 batches in flight; the rest queue here)
        connector=aiohttp.TCPConnector(limit=256),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


@dataclass(frozen=True)
class Timed:
    """One load's timed region: wall seconds, this process's CPU seconds (the load generator's
    own cost: every thread of the bench process, which runs no server), the items' results."""

    elapsed_s: float
    client_cpu_s: float
    results: list[dict[str, Any]] = field(default_factory=list)


async def _timed(work: Awaitable[list[dict[str, Any]]]) -> Timed:
    """``work`` timed with the cyclic garbage collector off, as ``timeit`` does: the answers are
    thousands of small dicts, and collections scanning them cost the client about a third of
    its CPU per item (reference counting still frees what is dropped)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        results = await work
        return Timed(time.perf_counter() - started, time.process_time() - cpu_started, results)
    finally:
        if was_enabled:
            gc.enable()


def encode(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def score_body(rubric: str, batch: Sequence[JudgeItem], cache: bool) -> bytes:
    """A ``POST /v1/score`` body, encoded (once, before any clock starts)."""
    return encode(
        {
            "rubric": rubric,
            "items": [item_json(i) for i in batch],
            "options": {"cache": cache, "timeout_s": REQUEST_TIMEOUT_S},
        }
    )


def _chat_body(model: str, item: JudgeItem, max_tokens: int) -> bytes:
    body = {
        "model": model,
        "messages": naive_messages(item),
        "max_tokens": max_tokens,
        "temperature": 0.0,
    }
    return encode(body)


async def _post(http: aiohttp.ClientSession, url: str, body: bytes) -> Any:
    async with http.post(url, data=body, headers=_JSON) as resp:
        raw = await resp.read()
        if resp.status != 200:
            text = raw[:500].decode(errors="replace")
            raise RuntimeError(f"POST {url}: HTTP {resp.status}: {text}")
    return orjson.loads(raw)


async def _score(
    http: aiohttp.ClientSession, url: str, body: bytes, n_items: int
) -> list[dict[str, Any]]:
    """One scoring request; every one of its ``n_items`` items must come back ``ok``."""
    results: list[dict[str, Any]] = (await _post(http, url, body))["results"]
    if len(results) != n_items:
        raise RuntimeError(f"POST {url}: {len(results)} results for {n_items} items")
    bad = [r for r in results if r["status"] != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} benchmark items failed: {bad[0]['status']}: {bad[0]}")
    return results


async def batches(
    http: aiohttp.ClientSession,
    base_url: str,
    rubric: str,
    items: Sequence[JudgeItem],
    *,
    batch_size: int,
    cache: bool,
) -> Timed:
    """Every batch of ``batch_size`` items in flight at once."""
    url = f"{base_url}/v1/score"
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    bodies = [(score_body(rubric, c, cache), len(c)) for c in chunks]

    async def all_batches() -> list[dict[str, Any]]:
        answers = await asyncio.gather(*(_score(http, url, b, n) for b, n in bodies))
        return [r for answer in answers for r in answer]

    return await _timed(all_batches())


async def single_item_clients(
    http: aiohttp.ClientSession,
    base_url: str,
    rubric: str,
    items: Sequence[JudgeItem],
    *,
    clients: int,
    cache: bool,
) -> Timed:
    """``clients`` concurrent clients, each sending one item per request until none is left."""
    url = f"{base_url}/v1/score"
    queue: Iterator[bytes] = iter([score_body(rubric, [item], cache) for item in items])
    results: list[dict[str, Any]] = []

    async def worker() -> None:
        for body in queue:  # shared iterator: each item goes to exactly one client
            results.extend(await _score(http, url, body, 1))

    async def all_clients() -> list[dict[str, Any]]:
        await asyncio.gather(*(worker() for _ in range(clients)))
        return results

    return await _timed(all_clients())


async def naive_chat_clients(
    http: aiohttp.ClientSession,
    base_url: str,
    model: str,
    items: Sequence[JudgeItem],
    *,
    clients: int,
    max_tokens: int,
) -> tuple[float, list[str]]:
    """What users write today: one chat completion per sample, the score parsed from text."""
    url = f"{base_url}/v1/chat/completions"
    texts: dict[str, str] = {}
    queue: Iterator[tuple[str, bytes]] = iter(
        [(item.id, _chat_body(model, item, max_tokens)) for item in items]
    )

    async def worker() -> None:
        for item_id, body in queue:
            answer = await _post(http, url, body)
            texts[item_id] = str(answer["choices"][0]["message"]["content"] or "")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return elapsed, [texts[item.id] for item in items]
