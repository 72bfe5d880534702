"""Pairwise mode and group scoring on real vLLM with the embedded SmolLM2-135M (a weak judge:
these tests prove the machinery, never judgment quality)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

QUESTION = "What is the capital of France?"
GOOD = "The capital of France is Paris."
BAD = "I don't know, maybe a banana."


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(url, json=body, timeout=600)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def test_pairwise_rubric_on_score_endpoint(server_url: str) -> None:
    items = [
        {"id": "gb", "prompt": QUESTION, "response": GOOD, "metadata": {"response_b": BAD}},
        {"id": "bg", "prompt": QUESTION, "response": BAD, "metadata": {"response_b": GOOD}},
        {"id": "no-b", "prompt": QUESTION, "response": GOOD},
    ]
    body = post(f"{server_url}/v1/score", {"rubric": "pairwise", "items": items})
    version = httpx.get(f"{server_url}/v1/rubrics/pairwise").json()["version"]
    assert body["rubric"] == {"name": "pairwise", "version": version}
    gb, bg, missing = body["results"]
    for r in (gb, bg):
        assert r["status"] == "ok", r
        assert 0.0 <= r["reward"] <= 1.0
        orders = r["details"]["orders"]
        assert [o["order"] for o in orders] == ["ab", "ba"]
        assert all(0.0 <= o["p_a"] <= 1.0 and 0.0 < o["valid_mass"] <= 1.0 for o in orders)
        assert r["reward"] == pytest.approx((orders[0]["p_a"] + orders[1]["p_a"]) / 2, abs=1e-6)
        assert isinstance(r["details"]["agree"], bool)
        assert r["details"]["agree"] == (orders[0]["winner"] == orders[1]["winner"])
    # Both orders of one pair are the same two prompts: swapping the items complements p.
    assert gb["reward"] + bg["reward"] == pytest.approx(1.0, abs=2e-3)
    assert missing["status"] == "invalid_input" and missing["reward"] is None


def test_group_win_rates_with_a_duplicate(server_url: str) -> None:
    responses = [GOOD, BAD, GOOD, "Paris."]
    request = {"rubric": "pairwise", "prompt": QUESTION, "responses": responses}
    body = post(f"{server_url}/v1/score/group", request)
    assert body["rubric"]["name"] == "pairwise"
    assert body["model"].startswith("SmolLM2-135M-Instruct")
    pairing = body["pairing"]
    assert pairing["strategy"] == "all_pairs"
    assert pairing["comparisons"] == 6 and pairing["judge_calls"] == 3  # the copy is free
    results, comparisons = body["results"], body["comparisons"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    for r in results:
        assert r["status"] == "ok", r
        assert 0.0 <= r["reward"] <= 1.0
        assert r["details"]["comparisons"] == 3
        assert r["reward"] == pytest.approx(r["details"]["wins"] / 3)
        assert math.isfinite(r["details"]["bt_score"])
    # Every comparison hands out exactly one point, split between its two sides.
    assert len(comparisons) == 6
    points = [0.0] * 4
    for c in comparisons:
        assert c["status"] == "ok" and 0.0 <= c["p_i_beats_j"] <= 1.0
        points[c["i"]] += c["p_i_beats_j"]
        points[c["j"]] += 1.0 - c["p_i_beats_j"]
        if c["identical"]:
            assert (c["i"], c["j"]) == (0, 2) and c["p_i_beats_j"] == 0.5
        else:
            assert isinstance(c["agree"], bool)
    assert sum(points) == pytest.approx(len(comparisons))
    assert sum(r["details"]["wins"] for r in results) == pytest.approx(len(comparisons))
    assert points == pytest.approx([r["details"]["wins"] for r in results])
    # The duplicate pair: same text, same opponents, same reward.
    assert results[0]["reward"] == results[2]["reward"]
    assert results[0]["details"]["bt_score"] == pytest.approx(results[2]["details"]["bt_score"])

    # A reordered group is the same comparisons: all served from the result cache.
    again = post(f"{server_url}/v1/score/group", {**request, "responses": responses[::-1]})
    assert all(c["cached"] for c in again["comparisons"] if not c["identical"])
    rewards = [r["reward"] for r in again["results"]][::-1]
    assert rewards == pytest.approx([r["reward"] for r in results], abs=1e-6)


def one_round(responses: list[str]) -> dict[str, object]:
    return {
        "rubric": "pairwise",
        "prompt": QUESTION,
        "responses": responses,
        "options": {"pairing": "round_robin", "rounds": 1},
    }


def test_group_round_robin_and_bad_requests(server_url: str) -> None:
    request = one_round(
        [GOOD, BAD, "Paris.", "Lyon.", "It is Paris, on the Seine.", "France."]
    )
    body = post(f"{server_url}/v1/score/group", request)
    assert body["pairing"]["comparisons"] == 6 < 15
    assert all(r["status"] == "ok" and r["details"]["comparisons"] == 2 for r in body["results"])

    one = httpx.post(f"{server_url}/v1/score/group", json={**request, "responses": [GOOD]})
    assert one.status_code == 422
    assert one.json()["error"]["type"] == "invalid_request"
    assert one.json()["error"]["param"] == "responses"
    pointwise = httpx.post(
        f"{server_url}/v1/score/group", json={**request, "rubric": "helpfulness"}
    )
    assert pointwise.status_code == 422 and pointwise.json()["error"]["type"] == "invalid_rubric"


def test_group_round_robin_gives_copies_one_reward(server_url: str) -> None:
    # Six responses, one round: the copy at 0 meets 1 and 5, the copy at 3 meets 2 and 4.
    responses = [GOOD, BAD, "Paris.", GOOD, "Lyon.", "France."]
    request = one_round(responses)
    body = post(f"{server_url}/v1/score/group", request)
    assert body["pairing"]["comparisons"] == 6 and body["pairing"]["judge_calls"] == 6
    results, comparisons = body["results"], body["comparisons"]
    assert all(r["status"] == "ok" for r in results), results
    points = [0.0] * len(responses)
    for c in comparisons:
        assert c["status"] == "ok" and not c["identical"]
        points[c["i"]] += c["p_i_beats_j"]
        points[c["j"]] += 1.0 - c["p_i_beats_j"]
    # The copies' own comparisons differ (so a win rate per position would differ) ...
    assert points[0] != pytest.approx(points[3], abs=1e-6)
    # ... but the reward is the text's: both copies' outcomes pooled, one result for both.
    first, second = results[0], results[3]
    assert first["reward"] == second["reward"]
    assert first["details"] == second["details"]
    assert first["reward"] == pytest.approx((points[0] + points[3]) / 4, abs=1e-9)
    assert math.isfinite(first["details"]["bt_score"])
    assert sum(r["details"]["wins"] for r in results) == pytest.approx(len(comparisons))
