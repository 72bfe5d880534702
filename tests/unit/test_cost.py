"""The engine-call estimate admission uses is what judging really costs, reasoning included.

Reasoning-first judges make two engine calls per verdict (generate the reasoning, then read the
verdict); an estimate of one would admit twice the work ``JUDGE_MAX_ENGINE_CALLS_PER_REQUEST``
and ``JUDGE_MAX_QUEUE_ENGINE_CALLS`` allow. Every shipped rubric, with reasoning off and on, is
scored at the engine seam and its measured ``usage.engine_calls`` compared with the estimate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml

from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.instance import parse_instance_criteria
from judge_server.rubrics.spec import RubricSpec
from judge_server.service.cost import engine_calls
from judge_server.service.scoring import Scorer
from judge_server.settings import project_rubrics_dir
from tests.fakes import ScriptedEngine
from tests.unit.test_api import assert_envelope
from tests.unit.test_limits import make_client

SHIPPED = sorted(p.stem for p in project_rubrics_dir().glob("*.yaml"))
# Every item takes the engine's full path: a free-text reference the rules cannot decide, a
# second response that differs (pairwise), an answer the content-free guard lets through.
ITEM = JudgeItem(
    "x",
    "Which city is the capital of France?",
    "The capital of France is Paris, on the Seine.",
    reference="Paris",
    metadata={"response_b": "It is Lyon."},
)
# Rubrics that judge each item by its own criteria get three of them.
OWN_CRITERIA = parse_instance_criteria(
    [{"criterion": f"Point {i}.", "points": i} for i in (3, 2, -1)]
)


def registry(reasoning: bool) -> dict[str, RubricSpec]:
    rubrics: dict[str, RubricSpec] = {}
    for name in SHIPPED:
        data: dict[str, Any] = yaml.safe_load(
            (project_rubrics_dir() / f"{name}.yaml").read_text(encoding="utf-8")
        )
        rubrics[name] = parse_rubric({**data, "reasoning": {"enabled": reasoning}})
    return rubrics


@pytest.mark.parametrize("reasoning", [False, True])
@pytest.mark.parametrize("name", SHIPPED)
async def test_the_estimate_is_the_engine_calls_an_item_makes(name: str, reasoning: bool) -> None:
    rubrics = registry(reasoning)  # a composite's components think first too
    judge = judge_for(rubrics[name], rubrics.__getitem__)
    item = ITEM
    if getattr(rubrics[name], "instance_criteria", "forbidden") == "required":
        item = replace(ITEM, criteria=OWN_CRITERIA)
    if (split := getattr(rubrics[name], "split", None)) is not None:
        # A process rubric is admitted at its most steps: an item with that many costs it.
        lines = [f"{k}. Step {k} of the answer." for k in range(1, split.max_steps + 1)]
        item = replace(item, response="\n".join(lines))
    engine = ScriptedEngine(max_model_len=100_000)
    await engine.start()
    [result] = await Scorer(engine).score(judge, [item], timeout_s=30, use_cache=False)
    assert result.status == "ok", result
    assert result.usage.engine_calls == engine_calls(judge, item), result.details


def test_a_reasoning_first_rubric_is_admitted_at_two_calls_per_item() -> None:
    verdict = {"name": "v", "mode": "verdict", "template": "{prompt} {response} Yes or No?"}
    items = [{"prompt": "p", "response": f"r{i}"} for i in range(3)]
    with make_client(max_engine_calls_per_request=5) as client:
        body = {"rubric": verdict, "items": items}
        assert client.post("/v1/score", json=body).status_code == 200  # 3 calls
        thinking = {**verdict, "reasoning": {"enabled": True}}
        resp = client.post("/v1/score", json={"rubric": thinking, "items": items})
        assert_envelope(resp, 413, "too_many_engine_calls", "items")
        assert "6 engine calls (3 x 2 per item" in resp.json()["error"]["message"]
