"""The real server on real vLLM with the embedded SmolLM2-135M (a weak judge: these tests
prove the machinery, never judgment quality)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from judge_client import (
    AsyncJudgeClient,
    JudgeClient,
    NotFoundError,
    ScoreItem,
    UnprocessableEntityError,
)

QUESTIONS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is 12 * 12?", "12 * 12 = 144."),
    ("Name a primary colour.", "Red is a primary colour."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is the boiling point of water at sea level in Celsius?", "100 degrees Celsius."),
    ("Translate 'thank you' into Spanish.", "Gracias."),
    ("Who wrote Romeo and Juliet?", "I don't know, maybe a banana."),
    ("Give me a synonym for 'happy'.", "Joyful."),
]


def items() -> list[dict[str, str]]:
    return [{"id": f"q{i}", "prompt": q, "response": a} for i, (q, a) in enumerate(QUESTIONS)]


def test_helpfulness_scores_eight_items_in_order(server_url: str) -> None:
    resp = httpx.post(
        f"{server_url}/v1/score", json={"rubric": "helpfulness", "items": items()}, timeout=300
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["rubric"]["name"] == "helpfulness"
    version = httpx.get(f"{server_url}/v1/rubrics/helpfulness").json()["version"]
    assert body["rubric"]["version"] == version
    assert body["model"].startswith("SmolLM2-135M-Instruct")
    assert [r["id"] for r in body["results"]] == [f"q{i}" for i in range(8)]
    for r in body["results"]:
        assert r["status"] == "ok", r
        assert 0.0 <= r["reward"] <= 1.0
        dist = r["details"]["distribution"]
        assert set(dist) == {str(s) for s in range(1, 10)}
        assert sum(dist.values()) == pytest.approx(1.0, abs=1e-6)
        assert 0.0 < r["details"]["valid_mass"] <= 1.0
        expected = sum(int(k) * v for k, v in dist.items())
        assert r["reward"] == pytest.approx((expected - 1) / 8, abs=1e-6)


def test_same_items_through_the_sync_and_async_clients(server_url: str) -> None:
    with JudgeClient(server_url, chunk_size=3) as client:
        response = client.score("helpfulness", [ScoreItem(**i) for i in items()])
        assert [r.id for r in response.results] == [f"q{i}" for i in range(8)]
        assert all(r.ok and r.reward is not None for r in response.results)
        assert response.model.startswith("SmolLM2")
        with pytest.raises(UnprocessableEntityError) as err:
            client.score({"name": "x", "mode": "verdict"}, items()[:1])
        assert err.value.param == "rubric" and err.value.error_type == "invalid_rubric"
        with pytest.raises(NotFoundError) as missing:
            client.score("no-such-rubric", items()[:1])
        assert missing.value.error_type == "rubric_not_found"
        assert missing.value.status_code == 404

    async def run() -> list[float | None]:
        async with AsyncJudgeClient(server_url, chunk_size=4) as client:
            return await client.rewards("helpfulness", items())

    rewards = asyncio.run(run())
    assert len(rewards) == 8 and all(r is not None and 0 <= r <= 1 for r in rewards)
    # Deterministic judge (one forward pass, no sampling): same items, same rewards.
    assert rewards == pytest.approx([r.reward for r in response.results], abs=1e-4)


def test_correctness_verdict_uses_reference(server_url: str) -> None:
    body = {
        "rubric": "correctness",
        "items": [
            {
                "id": "right",
                "prompt": "What is 7 + 5?",
                "response": "7 + 5 = 12",
                "reference": "12",
            },
            {"id": "no-ref", "prompt": "What is 7 + 5?", "response": "12"},
        ],
    }
    results = httpx.post(f"{server_url}/v1/score", json=body, timeout=300).json()["results"]
    assert results[0]["status"] == "ok" and 0.0 <= results[0]["reward"] <= 1.0
    assert 0.0 <= results[0]["details"]["p_yes"] <= 1.0
    assert results[1] == {
        "id": "no-ref",
        "status": "invalid_input",
        "reward": None,
        "details": {},
        "error": results[1]["error"],
        "cached": False,
        "usage": {"prompt_tokens": 0, "cached_prompt_tokens": 0, "engine_calls": 0},
    }


def test_too_long_item_is_invalid_input_and_neighbours_are_scored(server_url: str) -> None:
    long_response = "word " * 5000
    body = {
        "rubric": "helpfulness",
        "items": [
            items()[0],
            {"id": "long", "prompt": "Say something", "response": long_response},
            items()[1],
        ],
    }
    results = httpx.post(f"{server_url}/v1/score", json=body, timeout=300).json()["results"]
    assert [r["status"] for r in results] == ["ok", "invalid_input", "ok"]
    assert results[1]["reward"] is None and "tokens" in results[1]["error"]


def test_reasoning_first_inline_rubric(server_url: str) -> None:
    rubric = {
        "name": "reasoned",
        "mode": "verdict",
        "template": "Question: {prompt}\nAnswer: {response}\nIs the answer correct? "
        "Explain briefly, then answer Yes or No.",
        "reasoning": {"enabled": True, "max_tokens": 32},
    }
    body = {"rubric": rubric, "items": items()[:2]}
    results = httpx.post(f"{server_url}/v1/score", json=body, timeout=300).json()["results"]
    for r in results:
        assert r["status"] == "ok", r
        assert r["details"]["reasoning"]
        assert 0.0 <= r["reward"] <= 1.0


@pytest.mark.parametrize(
    ("body", "status", "type_"),
    [
        ({"rubric": "helpfulness", "items": []}, 422, "invalid_request"),
        ({"rubric": "unknown", "items": items()[:1]}, 404, "rubric_not_found"),
        ({"rubric": "helpfulness", "items": [{"prompt": "x"}]}, 422, "invalid_request"),
    ],
)
def test_bad_input_gets_an_envelope(
    server_url: str, body: dict[str, object], status: int, type_: str
) -> None:
    resp = httpx.post(f"{server_url}/v1/score", json=body, timeout=60)
    assert resp.status_code == status
    assert resp.json()["error"]["type"] == type_


def test_metrics_count_items_and_engine_tokens(server_url: str) -> None:
    httpx.post(
        f"{server_url}/v1/score", json={"rubric": "helpfulness", "items": items()[:2]}, timeout=300
    )
    text = httpx.get(f"{server_url}/metrics").text
    assert 'judge_items_total{mode="pointwise",rubric="helpfulness",status="ok"}' in text
    tokens = [line for line in text.splitlines() if line.startswith("judge_engine_prompt_tokens ")]
    assert tokens and float(tokens[0].split()[1]) > 0


def test_verify_and_likelihood_modes_through_the_api(server_url: str) -> None:
    items = [
        {"id": "right", "prompt": "What is 7 + 5?", "response": "7 + 5 = 12", "reference": "12"},
        {"id": "wrong", "prompt": "What is 7 + 5?", "response": "7 + 5 = 13", "reference": "12"},
        {
            "id": "key",
            "prompt": "What is 7 + 5?",
            "response": "Thought process:",
            "reference": "12",
        },
        {
            "id": "free",
            "prompt": "Who wrote Hamlet?",
            "response": "It was Shakespeare.",
            "reference": "William Shakespeare",
        },
        {"id": "no-ref", "prompt": "What is 7 + 5?", "response": "12"},
    ]
    body = httpx.post(
        f"{server_url}/v1/score", json={"rubric": "verify", "items": items}, timeout=300
    ).json()
    r = {x["id"]: x for x in body["results"]}
    assert (r["right"]["reward"], r["wrong"]["reward"], r["key"]["reward"]) == (1.0, 0.0, 0.0)
    assert r["key"]["details"]["has_answer"] is False
    assert r["free"]["status"] == "ok" and r["free"]["details"]["method"] in (
        "llm_verdict",
        "exact",
    )
    assert r["no-ref"]["status"] == "invalid_input" and r["no-ref"]["reward"] is None
    for rubric in ("reference_likelihood", "follow_up"):
        out = httpx.post(
            f"{server_url}/v1/score", json={"rubric": rubric, "items": items[:2]}, timeout=300
        ).json()["results"]
        assert all(x["status"] == "ok" and 0.0 < x["reward"] < 1.0 for x in out), out
    lk = httpx.post(
        f"{server_url}/v1/score",
        json={"rubric": "reference_likelihood", "items": items[:2]},
        timeout=300,
    ).json()["results"]
    # the response that computes 12 makes "12" likelier than the one that computes 13
    assert lk[0]["details"]["mean_logprob"] > lk[1]["details"]["mean_logprob"]
    # follow_up is normalised against a content-free answer (not an empty assistant turn): that
    # answer as the response adds nothing, so its reward is the midpoint
    non_answer = {"prompt": "What is 7 + 5?", "response": "I'm not sure I can help with that."}
    fu = httpx.post(
        f"{server_url}/v1/score", json={"rubric": "follow_up", "items": [non_answer]}, timeout=300
    ).json()["results"][0]
    assert fu["status"] == "ok"
    assert fu["details"]["gain"] == pytest.approx(0.0, abs=1e-3)
    assert fu["reward"] == pytest.approx(0.5, abs=1e-3)
