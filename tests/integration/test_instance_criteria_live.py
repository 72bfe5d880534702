"""Instance criteria on the real engine (issue 15): in one request, two items bring different
criteria and get their own per-criterion verdicts, the HealthBench row's reward is HealthBench's
arithmetic over those verdicts (computed here by hand), and bad criteria fail only their item."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.instance import criteria_hash, parse_instance_criteria
from judge_server.rubrics.registry import read_rubric_file

ROWS = Path(__file__).parents[1] / "data" / "healthbench_rows.jsonl"
SHIPPED = Path(__file__).parents[2] / "rubrics" / "healthbench.yaml"


def test_items_with_their_own_criteria_in_one_request(server_url: str) -> None:
    stroke = json.loads(ROWS.read_text(encoding="utf-8").splitlines()[1])
    other = [
        {"criterion": "Mentions the capital of Japan.", "points": 2, "tags": ["axis:accuracy"]},
        {"id": "rude", "text": "The response is rude to the user.", "weight": -1},
    ]
    items = [
        {"id": "stroke", "prompt": stroke["prompt"], "response": stroke["response"],
         "rubrics": stroke["rubrics"]},
        {"id": "tokyo", "prompt": "What is the capital of Japan?", "response": "Tokyo.",
         "rubrics": other},
        {"id": "no_text", "prompt": "p", "response": "r", "rubrics": [{"points": 3}]},
        {"id": "not_a_number", "prompt": "p", "response": "r",
         "rubrics": [{"criterion": "x", "points": "3"}]},
        {"id": "none", "prompt": "p", "response": "r"},
        {"id": "huge", "prompt": "p", "response": "r",
         "rubrics": [{"criterion": "x", "points": 10**400}]},
    ]  # fmt: skip
    body = {"rubric": "healthbench", "items": items, "options": {"cache": False}}
    resp = httpx.post(f"{server_url}/v1/score", json=body, timeout=600)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["rubric"] == {
        "name": "healthbench",
        "version": read_rubric_file(SHIPPED, parse_rubric).version,
    }
    stroke_r, tokyo_r, no_text, not_number, none, huge = out["results"]

    for result, raw in ((stroke_r, stroke["rubrics"]), (tokyo_r, other)):
        assert result["status"] == "ok", result
        parsed = parse_instance_criteria(raw)
        rows = result["details"]["criteria"]
        assert [r["id"] for r in rows] == [c.id for c in parsed]
        assert [r["weight"] for r in rows] == [c.weight for c in parsed]
        assert result["details"]["criteria_hash"] == criteria_hash(parsed)
        assert result["usage"]["engine_calls"] == len(parsed)  # one verdict per criterion
        # HealthBench's arithmetic by hand: points of the criteria met over positive points
        met = [r["p_met"] >= 0.5 for r in rows]
        assert [r["met"] for r in rows] == met
        positive = sum(c.weight for c in parsed if c.weight > 0)
        achieved = sum(c.weight for c, m in zip(parsed, met, strict=True) if m)
        assert result["details"]["points_score"] == pytest.approx(achieved / positive)
        assert result["reward"] == pytest.approx(min(1.0, max(0.0, achieved / positive)))
    assert [r["id"] for r in stroke_r["details"]["criteria"]] == ["c1", "c2", "c3"]
    assert [r["id"] for r in tokyo_r["details"]["criteria"]] == ["c1", "rude"]
    assert stroke_r["details"]["criteria"][0]["tags"] == ["level:example", "axis:accuracy"]
    assert stroke_r["details"]["criteria_hash"] != tokyo_r["details"]["criteria_hash"]

    assert no_text["status"] == "invalid_input" and no_text["reward"] is None
    assert "rubrics[0].criterion must be non-empty text" in no_text["error"]
    assert not_number["status"] == "invalid_input"
    assert "rubrics[0].points must be a number, not str" in not_number["error"]
    assert none["status"] == "invalid_input" and "needs a rubrics field" in none["error"]
    assert huge["status"] == "invalid_input" and "points must be between" in huge["error"]
    for bad in (no_text, not_number, none, huge):
        assert bad["usage"]["engine_calls"] == 0
