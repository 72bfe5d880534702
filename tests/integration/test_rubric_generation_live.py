"""Rubric generation on the real engine: vLLM's structured output gives JSON the rubric loader
accepts, PUT saves it as a version and the server scores with it. Kept to one small generation
(two criteria at most): generation is slow on a CPU."""

from __future__ import annotations

import httpx

from judge_server.judges.modes import parse_rubric
from judge_server.judges.rubric import RubricModeSpec
from judge_server.rubrics.criteria import Criterion
from tests.integration.conftest import AS_ADMIN

GENERATION_TIMEOUT_S = 300


def test_generated_rubric_is_accepted_saved_and_served(server_url: str) -> None:
    request = {
        "prompt": "List three fruits, one per line.",
        "pairs": [{"chosen": "Apple\nBanana\nCherry", "rejected": "I like fruit."}],
        "name": "generated_live",
        "max_criteria": 2,
    }
    resp = httpx.post(
        f"{server_url}/v1/rubrics/generate", json=request, timeout=GENERATION_TIMEOUT_S
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    criteria = [Criterion.model_validate(c) for c in body["criteria"]]
    assert 1 <= len(criteria) <= 2
    definition = body["definition"]
    spec = parse_rubric(definition, source="generated")
    assert isinstance(spec, RubricModeSpec) and spec.version == body["rubric"]["version"]
    assert body["model"] in definition["description"]  # the rubric names the model that wrote it

    put = httpx.put(
        f"{server_url}/v1/rubrics/generated_live", json=definition, headers=AS_ADMIN, timeout=30
    )
    assert put.status_code in (200, 201), put.text
    assert put.json()["version"] == body["rubric"]["version"]
    scored = httpx.post(
        f"{server_url}/v1/score",
        json={
            "rubric": "generated_live",
            "items": [{"prompt": request["prompt"], "response": "Apple\nBanana\nCherry"}],
        },
        timeout=GENERATION_TIMEOUT_S,
    ).json()
    assert scored["rubric"] == body["rubric"]
    result = scored["results"][0]
    assert result["status"] == "ok" and 0.0 <= result["reward"] <= 1.0
    assert [row["id"] for row in result["details"]["criteria"]] == [c.id for c in criteria]


def test_nothing_to_generate_from_is_a_422_before_the_engine(server_url: str) -> None:
    resp = httpx.post(f"{server_url}/v1/rubrics/generate", json={"prompt": " "}, timeout=30)
    assert resp.status_code == 422
    assert "nothing to generate from" in resp.json()["error"]["message"]


def test_generated_instance_criteria_score_on_their_default_base(server_url: str) -> None:
    request = {"prompt": "Name the capital of France.", "output": "criteria", "max_criteria": 2}
    resp = httpx.post(
        f"{server_url}/v1/rubrics/generate", json=request, timeout=GENERATION_TIMEOUT_S
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["base"]["name"] == "healthbench" and body["definition"] is None
    item = {"prompt": request["prompt"], "response": "Paris.", "rubrics": body["criteria"]}
    scored = httpx.post(
        f"{server_url}/v1/score",
        json={"rubric": "healthbench", "items": [item], "options": {"cache": False}},
        timeout=GENERATION_TIMEOUT_S,
    ).json()
    result = scored["results"][0]
    assert result["status"] == "ok", result
    assert [r["id"] for r in result["details"]["criteria"]] == [c["id"] for c in body["criteria"]]
    refused = httpx.post(
        f"{server_url}/v1/rubrics/generate",
        json={**request, "base": "instruction_following"},
        timeout=30,
    )
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "base"
