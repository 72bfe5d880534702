"""The load of ``bench --section rm-vs-serve-rm``: concurrent clients, each sending one sample per
request as OpenRLHF's trainer does, timing every request.

A ``Send`` posts one sample and returns its reward; there is one per wire shape:
``get_reward_sender`` (OpenRLHF's ``/get_reward``, for ``serve_rm`` and for judge-server's
dialect route) and ``v1_score_sender`` (judge-server's own ``/v1/score``, one item).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from judge_server.cli.bench.http_load import REQUEST_TIMEOUT_S


@dataclass(frozen=True)
class Sample:
    """One trainer sample in both forms: the chat prompt and response judge-server takes, and
    the text OpenRLHF sends (``prompt_text``: the prompt through the chat template with the
    generation prompt; ``query``: that plus the response and the end-of-sequence token)."""

    id: str
    prompt: str
    response: str
    prompt_text: str
    query: str
    label: str = ""


Send = Callable[[httpx.AsyncClient, Sample], Awaitable[float]]


def client() -> httpx.AsyncClient:
    """httpx, not the scoring sections' aiohttp load generator: here every request is one
    sample to an engine-bound server (a few a second on a CPU), so the client's CPU is noise,
    and httpx serves the in-process apps of this load's tests."""
    return httpx.AsyncClient(
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
    )


@dataclass(frozen=True)
class LoadResult:
    samples: int
    clients: int
    elapsed_s: float
    latencies_s: list[float]
    rewards: dict[str, float]

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.elapsed_s if self.elapsed_s > 0 else math.inf

    def latency_ms(self, q: float) -> float:
        return 1000.0 * percentile(self.latencies_s, q)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the two nearest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _reward_of(resp: httpx.Response, what: str) -> dict[str, object]:
    if resp.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {resp.status_code}: {resp.text[:500]}")
    body: dict[str, object] = resp.json()
    return body


def openrlhf_body(sample: Sample) -> dict[str, list[str]]:
    return {"query": [sample.query], "prompts": [sample.prompt_text], "labels": [sample.label]}


def get_reward_sender(base_url: str, rubric: str | None = None) -> Send:
    """OpenRLHF's request (``openrlhf/utils/agent.py`` ``_fetch_rewards_via_http``, one sample):
    ``{"query": [...], "prompts": [...], "labels": [...]}``; the reward is ``rewards[0]``."""
    url = f"{base_url}/get_reward"
    if rubric is not None:
        url += f"?rubric={quote(rubric)}"

    async def send(http: httpx.AsyncClient, sample: Sample) -> float:
        answer = _reward_of(await http.post(url, json=openrlhf_body(sample)), f"POST {url}")
        rewards = answer.get("rewards")
        if not isinstance(rewards, list) or len(rewards) != 1:
            raise RuntimeError(f"POST {url}: expected one reward, got {answer}")
        # judge-server fills a failed sample (flagged in statuses): a fill is not a measurement
        if answer.get("statuses", ["ok"]) != ["ok"]:
            raise RuntimeError(f"POST {url}: the sample was not judged: {answer}")
        return float(rewards[0])

    return send


def v1_score_sender(base_url: str, rubric: str) -> Send:
    """judge-server's ``POST /v1/score`` with one item, result cache off; the reward is the
    item's ``reward``."""
    url = f"{base_url}/v1/score"

    async def send(http: httpx.AsyncClient, sample: Sample) -> float:
        body = {
            "rubric": rubric,
            "items": [{"id": sample.id, "prompt": sample.prompt, "response": sample.response}],
            "options": {"cache": False},
        }
        answer = _reward_of(await http.post(url, json=body), f"POST {url}")
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != 1 or results[0]["status"] != "ok":
            raise RuntimeError(f"POST {url}: expected one ok result, got {answer}")
        return float(results[0]["reward"])

    return send


async def judge_server_senders(
    http: httpx.AsyncClient, base_url: str, rubric: str, probe: Sample
) -> list[tuple[str, Send]]:
    """The routes a trainer can reach judge-server's reward model by, each with its name:
    OpenRLHF's dialect route ``/get_reward`` if the server has it (``probe`` is sent to it and
    must score), then ``/v1/score``."""
    routes = [("POST /v1/score", v1_score_sender(base_url, rubric))]
    route = f"POST /get_reward?rubric={rubric}"
    resp = await http.post(
        f"{base_url}/get_reward?rubric={quote(rubric)}", json=openrlhf_body(probe)
    )
    if route_missing(resp):
        return routes
    _reward_of(resp, route)
    return [(route, get_reward_sender(base_url, rubric)), *routes]


def route_missing(resp: httpx.Response) -> bool:
    """No such route (405, or a 404 that is not the route's own, such as an unknown rubric)."""
    if resp.status_code == 405:
        return True
    if resp.status_code != 404:
        return False
    try:
        body = resp.json()
    except ValueError:
        return True
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind in (None, "not_found")


async def one_sample_clients(
    http: httpx.AsyncClient, send: Send, samples: Sequence[Sample], *, clients: int
) -> LoadResult:
    """``clients`` concurrent clients, each sending one sample per request (and waiting for its
    answer before the next) until none is left; every sample is sent exactly once."""
    queue: Iterator[Sample] = iter(samples)
    latencies: list[float] = []
    rewards: dict[str, float] = {}

    async def client() -> None:
        for sample in queue:  # shared iterator: each sample goes to exactly one client
            sent = time.perf_counter()
            rewards[sample.id] = await send(http, sample)
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return LoadResult(len(samples), clients, elapsed, latencies, rewards)
