"""The result cache and in-flight dedup on the real engine."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from judge_server.engines.model_identity import model_revision
from judge_server.engines.model_store import resolve_model
from judge_server.settings import Settings


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


def test_the_model_is_named_by_its_content_and_the_cache_is_counted(server_url: str) -> None:
    """The real engine hashes its model folder at start; /metrics shows that revision (the same
    one an independent hash of the folder gives) and the cache and in-flight counters."""
    item = {"prompt": "What colour is the sky?", "response": "Blue, on a clear day."}
    body = {"rubric": "helpfulness", "items": [item]}
    for _ in range(2):
        httpx.post(f"{server_url}/v1/score", json=body, timeout=300).raise_for_status()
    text = httpx.get(f"{server_url}/metrics").text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    [judge] = [s for s in samples if s.name == "judge_model_info" and s.labels["role"] == "judge"]
    settings = Settings()
    folder, model_id = resolve_model(settings.model, settings.cache_dir)
    with tempfile.TemporaryDirectory() as memo_dir:  # a fresh memo: the content is re-read
        assert judge.labels["revision"] == model_revision(folder, Path(memo_dir))
    assert judge.labels["model"] == model_id

    def value(name: str, **labels: str) -> float:
        return next(s.value for s in samples if s.name == name and s.labels == labels)

    assert value("judge_cache_lookups_total", tier="all", result="hit") >= 1
    assert value("judge_cache_lookups_total", tier="sqlite", result="miss") >= 1
    assert value("judge_cache_entries", tier="sqlite") >= 1
    assert value("judge_inflight_started_total") >= 1
