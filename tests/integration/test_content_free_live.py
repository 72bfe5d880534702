"""Content-free responses against a free-text reference, on the real engine: reward 0, status
ok, decided by the guard, for verify and for the correctness verdict rubric; genuine answers
still reach the judge. A pairwise rubric shown the reference never lets a content-free response
win."""

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
    "Keine Ahnung.",
    "Based on the information provided, the answer follows.",
]
CHOICES = "What is the capital of France?\nA) Lyon\nB) Paris\nC) Rome"


@pytest.mark.parametrize("rubric", ["verify", "correctness"])
def test_content_free_responses_get_zero_on_the_real_engine(server_url: str, rubric: str) -> None:
    items = [
        {"id": f"k{i}", "prompt": QUESTION, "response": r, "reference": "Paris"}
        for i, r in enumerate(CONTENT_FREE)
    ]
    items.append(
        {"id": "genuine", "prompt": QUESTION, "response": "It is Paris.", "reference": "Paris"}
    )
    listing = {"prompt": CHOICES, "response": "A) Lyon B) Paris C) Rome", "reference": "B"}
    items.append({"id": f"k{len(CONTENT_FREE)}", **listing})
    resp = httpx.post(
        f"{server_url}/v1/score", json={"rubric": rubric, "items": items}, timeout=600
    )
    assert resp.status_code == 200, resp.text
    results = {r["id"]: r for r in resp.json()["results"]}
    # verify's exact check decides first ("no_answer" for an empty code block); the guard
    # decides the rest, before the judge
    deciders = {"answer_guard", "no_answer"} if rubric == "verify" else {"answer_guard"}
    for i in range(len(CONTENT_FREE) + 1):
        result = results[f"k{i}"]
        assert result["status"] == "ok", result
        assert result["reward"] == 0.0, result
        assert result["details"]["method"] in deciders, result
    genuine = results["genuine"]
    assert genuine["status"] == "ok" and genuine["details"].get("method") != "answer_guard"
    assert 0.0 <= genuine["reward"] <= 1.0


def test_a_content_free_response_never_wins_a_pairwise_rubric_shown_the_reference(
    server_url: str,
) -> None:
    rubric = {
        "name": "pair_with_reference",
        "mode": "pairwise",
        "template": "{prompt}\nReference answer: {reference}\n\nA: {response_a}\n\n"
        "B: {response_b}\n\nWhich answer agrees with the reference?",
    }
    items = [
        {
            "id": "free-first",
            "prompt": QUESTION,
            "response": "The answer is above.",
            "reference": "Paris",
            "metadata": {"response_b": "Paris"},
        },
        {
            "id": "judged",
            "prompt": QUESTION,
            "response": "Paris",
            "reference": "Paris",
            "metadata": {"response_b": "It is Paris, on the Seine."},
        },
    ]
    resp = httpx.post(
        f"{server_url}/v1/score", json={"rubric": rubric, "items": items}, timeout=600
    )
    assert resp.status_code == 200, resp.text
    results = {r["id"]: r for r in resp.json()["results"]}
    free = results["free-first"]
    assert free["status"] == "ok" and free["reward"] == 0.0, free
    assert free["details"]["answer_guard"] == {"a": "filler_only", "b": None}, free
    judged = results["judged"]
    assert judged["status"] == "ok" and judged["details"].get("method") != "answer_guard"
