"""Per-sample traffic under load on the real server: 48 concurrent clients, one sample each, on
all three per-sample routes (/v1/score, slime, OpenRLHF). Every answer must come back to its own
client: nothing lost, nothing swapped.

A swap would hand client i the reward of client j. It is caught three ways: /v1/score echoes a
distinct id; asked again one by one, each client gets a cache hit, and the cache is written
under the item's own content, so it must equal what that client got under load; and one fresh
batch (no cache, one request) judges every sample again, which must agree with the loaded answers
item for item. The samples are distinct enough that their rewards are (almost all) distinct, so a
swap cannot hide behind equal values.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

CLIENTS = 48
ROUTES = ("/v1/score", "/slime/reward", "/get_reward")
#: batched and single forward passes on the CPU engine agree to about 1e-6
FRESH_TOLERANCE = 1e-3


def samples(nonce: str) -> list[tuple[str, str]]:
    """(prompt, response) per client: distinct questions, right and wrong answers."""
    out = []
    for i in range(CLIENTS):
        a, b = 3 * i + 7, 11 * i + 2
        answer = a + b if i % 3 else a * b  # every third one answers the wrong operation
        prompt = f"[{nonce}] Question {i}: what is {a} plus {b}? Answer with the number."
        response = f"The sum of {a} and {b} is {answer}." if i % 2 else f"{answer}"
        out.append((prompt, response))
    return out


def request_for(i: int, prompt: str, response: str) -> tuple[str, dict[str, Any]]:
    route = ROUTES[i % len(ROUTES)]
    if route == "/v1/score":
        item = {"id": f"client-{i}", "prompt": prompt, "response": response}
        return route, {"rubric": "helpfulness", "items": [item]}
    if route == "/slime/reward":
        return route + "?rubric=helpfulness", {"prompt": prompt, "response": response}
    return route + "?rubric=helpfulness", {"query": [prompt + response], "prompts": [prompt]}


def reward_of(i: int, answer: dict[str, Any]) -> tuple[float, bool | None]:
    """(reward, cached) from any route's answer; checks the answer is for client ``i``."""
    if "results" in answer:
        (result,) = answer["results"]
        assert result["id"] == f"client-{i}", f"client {i} got {result['id']}'s answer"
        assert result["status"] == "ok", result
        return float(result["reward"]), bool(result["cached"])
    if "rewards" in answer:
        assert answer["statuses"] == ["ok"], answer
        (reward,) = answer["rewards"]
        return float(reward), None
    assert answer["ok"] is True, answer
    return float(answer["reward"]), bool(answer["cached"])


async def one_client(base_url: str, i: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    # A client of its own: its own connection, like a rollout worker.
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:
        response = await client.post(path, json=body)
        assert response.status_code == 200, (i, response.text)
        answer: dict[str, Any] = response.json()
        return answer


def test_concurrent_per_sample_clients_each_get_their_own_answer(server_url: str) -> None:
    pairs = samples(uuid.uuid4().hex[:8])
    requests = [request_for(i, p, r) for i, (p, r) in enumerate(pairs)]

    async def under_load() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(one_client(server_url, i, path, body) for i, (path, body) in enumerate(requests))
        )

    started = time.perf_counter()
    loaded = [reward_of(i, a) for i, a in enumerate(asyncio.run(under_load()))]
    loaded_s = time.perf_counter() - started
    assert len(loaded) == CLIENTS
    rewards = [reward for reward, _ in loaded]
    assert all(0.0 <= r <= 1.0 for r in rewards)
    assert len({round(r, 4) for r in rewards}) >= CLIENTS * 3 // 4, rewards  # swaps would show

    # One by one: each is now a cache hit, written under its own content.
    with httpx.Client(base_url=server_url, timeout=600) as client:
        for i, (path, body) in enumerate(requests):
            reward, cached = reward_of(i, client.post(path, json=body).json())
            assert cached in (True, None), f"client {i}: not cached"
            assert reward == rewards[i], f"client {i}: {reward} now, {rewards[i]} under load"
        # Fresh: every sample judged again in one batch, no cache.
        items = [
            {"id": f"client-{i}", "prompt": p, "response": r} for i, (p, r) in enumerate(pairs)
        ]
        body = {"rubric": "helpfulness", "items": items, "options": {"cache": False}}
        fresh = client.post("/v1/score", json=body).json()["results"]
    assert [r["id"] for r in fresh] == [f"client-{i}" for i in range(CLIENTS)]
    for i, result in enumerate(fresh):
        assert result["status"] == "ok" and result["cached"] is False
        assert abs(result["reward"] - rewards[i]) < FRESH_TOLERANCE, (i, result, rewards[i])
    print(f"{CLIENTS} concurrent one-sample clients answered in {loaded_s:.1f} s")
