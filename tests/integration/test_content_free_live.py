"""Content-free responses against a free-text reference, on the real engine: reward 0, status
ok, decided by the guard, for verify and for the correctness verdict rubric; genuine answers
still reach the judge."""

from __future__ import annotations

import httpx
import pytest

QUESTION = "What is the capital of France?"
CONTENT_FREE = [
    "Solution",
    "Let's solve this step by step.",
    "The answer is above.",
    "```\n```",
    "Je ne sais pas.",
    "答案在上面。",
    QUESTION,
]


@pytest.mark.parametrize("rubric", ["verify", "correctness"])
def test_content_free_responses_get_zero_on_the_real_engine(server_url: str, rubric: str) -> None:
    items = [
        {"id": f"k{i}", "prompt": QUESTION, "response": r, "reference": "Paris"}
        for i, r in enumerate(CONTENT_FREE)
    ]
    items.append(
        {"id": "genuine", "prompt": QUESTION, "response": "It is Paris.", "reference": "Paris"}
    )
    resp = httpx.post(
        f"{server_url}/v1/score", json={"rubric": rubric, "items": items}, timeout=600
    )
    assert resp.status_code == 200, resp.text
    results = {r["id"]: r for r in resp.json()["results"]}
    for i in range(len(CONTENT_FREE)):
        result = results[f"k{i}"]
        assert result["status"] == "ok", result
        assert result["reward"] == 0.0, result
        assert result["details"]["method"] == "answer_guard", result
    genuine = results["genuine"]
    assert genuine["status"] == "ok" and genuine["details"].get("method") != "answer_guard"
    assert 0.0 <= genuine["reward"] <= 1.0
