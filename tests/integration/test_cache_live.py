"""The result cache and in-flight dedup on the real engine."""

from __future__ import annotations

import asyncio

import httpx


def test_repeated_items_come_from_the_cache(server_url: str) -> None:
    item = {"prompt": "Name the largest planet.", "response": "Jupiter is the largest planet."}
    body = {"rubric": "helpfulness", "items": [item]}
    first = httpx.post(f"{server_url}/v1/score", json=body, timeout=300).json()["results"][0]
    second = httpx.post(f"{server_url}/v1/score", json=body, timeout=300).json()["results"][0]
    assert first["status"] == second["status"] == "ok"
    assert second["cached"] is True
    assert second["reward"] == first["reward"]
    assert second["details"]["distribution"] == first["details"]["distribution"]
    fresh = httpx.post(
        f"{server_url}/v1/score", json={**body, "options": {"cache": False}}, timeout=300
    ).json()["results"][0]
    assert fresh["cached"] is False
    assert abs(fresh["reward"] - first["reward"]) < 1e-4  # one forward pass: deterministic


def test_concurrent_single_item_requests_are_all_answered(server_url: str) -> None:
    """Trainer-style traffic: many one-item requests at once (vLLM batches them)."""

    async def run() -> list[dict[str, object]]:
        async with httpx.AsyncClient(base_url=server_url, timeout=300) as client:
            bodies = [
                {
                    "rubric": "correctness",
                    "items": [
                        {
                            "prompt": f"What is {i} + {i}?",
                            "response": str(2 * i),
                            "reference": str(2 * i),
                        }
                    ],
                    "options": {"cache": False},
                }
                for i in range(16)
            ]
            responses = await asyncio.gather(*(client.post("/v1/score", json=b) for b in bodies))
            return [r.json()["results"][0] for r in responses]

    results = asyncio.run(run())
    assert len(results) == 16
    assert all(r["status"] == "ok" and 0.0 <= r["reward"] <= 1.0 for r in results)  # type: ignore[operator]
