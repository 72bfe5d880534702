"""Instance criteria (issue 15, item 1): parsing both formats, HealthBench's arithmetic, the
judge using an item's own criteria, and every way a bad list fails only its own item. The real
engine runs the same path in tests/integration/test_instance_criteria_live.py."""

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.api.protocol import ScoreItemIn
from judge_server.cli.batch_files import read_items
from judge_server.judges import InvalidItemError, JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.judges.rubric import aggregate_criteria, points_score
from judge_server.rubrics.aggregation import Aggregation
from judge_server.rubrics.instance import (
    InstanceCriteriaError,
    criteria_hash,
    criteria_wire,
    parse_instance_criteria,
)
from judge_server.service.cost import engine_calls
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine

ROWS = Path(__file__).parents[1] / "data" / "healthbench_rows.jsonl"
TEMPLATE = "C: {prompt}\nR: {response}\nItem: {criterion}"


def hb(text: str, points: object, tags: object = ("axis:accuracy",)) -> dict[str, object]:
    return {"criterion": text, "points": points, "tags": list(tags)}  # type: ignore[call-overload]


def rubric(policy: str = "required", method: str = "points", **patch: object) -> Any:
    data: dict[str, object] = {
        "name": "inst",
        "mode": "rubric",
        "template": TEMPLATE,
        "instance_criteria": policy,
        "aggregation": {"method": method},
    }
    if policy != "required":
        data["criteria"] = [{"id": "own", "text": "rubric's own", "weight": 1}]
    data.update(patch)
    return parse_rubric(data)


def item(criteria: list[dict[str, object]] | None, id_: str = "x") -> JudgeItem:
    parsed = parse_instance_criteria(criteria) if criteria is not None else None
    return JudgeItem(id=id_, prompt="p", response="r", criteria=parsed)


# --- parsing ---------------------------------------------------------------------------------


def test_healthbench_format_gets_position_ids_and_keeps_tags() -> None:
    parsed = parse_instance_criteria([hb("Says A", 7), hb("Says B", -3, [])])
    assert [(c.id, c.text, c.weight, c.kind) for c in parsed] == [
        ("c1", "Says A", 7, "principle"),
        ("c2", "Says B", -3, "principle"),
    ]
    assert parsed[0].tags == ("axis:accuracy",)


def test_project_format_round_trips_through_the_wire_form() -> None:
    raw = [
        {"id": "cites", "text": "Cites a source", "weight": 2, "kind": "hard_rule"},
        {"id": "rude", "text": "Is rude", "weight": -1},
    ]
    parsed = parse_instance_criteria(raw)
    assert parsed[0].kind == "hard_rule" and parsed[1].weight == -1
    assert parse_instance_criteria(criteria_wire(parsed)) == parsed
    assert criteria_wire(parsed)[1] == {"id": "rude", "text": "Is rude", "weight": -1.0}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"criterion": "x", "points": 1}, "must be a list"),
        ([], "is empty"),
        (["says hi"], r"rubrics\[0\] must be an object"),
        ([hb("ok", 1), {"points": 3, "tags": []}], r"rubrics\[1\].criterion must be non-empty"),
        ([hb("   ", 1)], "non-empty"),
        ([{"id": "a", "text": " ", "weight": 1}], "blank"),
        ([hb("x", "7")], r"rubrics\[0\].points must be a number, not str"),
        ([hb("x", True)], "must be a number, not bool"),
        ([hb("x", None)], "not null"),
        ([hb("x", float("nan"))], "finite"),
        ([{"criterion": "x", "tags": []}], "points is missing"),
        ([hb("x", 0)], "weight 0"),
        ([hb("x", -1), hb("y", -2)], "no criterion with positive points"),
        ([hb("x", 1) | {"extra": 1}], "unknown keys"),
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], "duplicate"),
        ([{"id": "bad id!", "text": "x"}], r"rubrics\[0\].id"),
        ([hb("x" * 5000, 1)], r"rubrics\[0\].text"),
        ([hb("x", 1, [1])], r"rubrics\[0\].tags"),
    ],
)
def test_bad_criteria_are_refused_with_where_and_why(raw: object, message: str) -> None:
    with pytest.raises(InstanceCriteriaError, match=message):
        parse_instance_criteria(raw)


def test_count_is_bounded() -> None:
    with pytest.raises(InstanceCriteriaError, match="at most 3"):
        parse_instance_criteria([hb(f"c{i}", 1) for i in range(4)], max_count=3)


def test_hash_names_the_content_and_order() -> None:
    a = parse_instance_criteria([hb("A", 1), hb("B", 2)])
    assert criteria_hash(a) == criteria_hash(parse_instance_criteria([hb("A", 1), hb("B", 2)]))
    assert criteria_hash(a) != criteria_hash(parse_instance_criteria([hb("A", 1), hb("B", 3)]))
    assert len(criteria_hash(a)) == 12


# --- HealthBench's arithmetic ----------------------------------------------------------------


def test_points_match_healthbench_by_hand() -> None:
    # simple-evals healthbench_eval_test.py's own case: points 7, 5, 10, -6; met T, F, T, T.
    criteria = parse_instance_criteria([hb("a", 7), hb("b", 5), hb("c", 10), hb("d", -6)])
    p_met = [0.9, 0.2, 0.5, 0.7]  # met at threshold 0.5: yes, no, yes (exactly 0.5), yes
    reward, rows, failed = aggregate_criteria(criteria, p_met, Aggregation(method="points"))
    hand = (7 + 0 + 10 - 6) / (7 + 5 + 10)  # = 0.5
    assert reward == pytest.approx(hand) == pytest.approx(0.5)
    assert points_score(criteria, [r["met"] for r in rows]) == pytest.approx(hand)
    assert [r["contribution"] for r in rows] == [7, 0, 10, -6]
    assert rows[0]["tags"] == ["axis:accuracy"] and failed == []
    # weighted would use P(met) itself: (0.9*7 + 0.2*5 + 0.5*10 - 0.7*6) / 22
    weighted, _, _ = aggregate_criteria(criteria, p_met, Aggregation())
    assert weighted == pytest.approx((6.3 + 1.0 + 5.0 - 4.2) / 22)


def test_points_below_zero_clip_the_reward_but_not_the_points_score() -> None:
    criteria = parse_instance_criteria([hb("good", 2), hb("pitfall", -8)])
    reward, rows, _ = aggregate_criteria(criteria, [0.1, 0.9], Aggregation(method="points"))
    assert reward == 0.0
    # HealthBench clips only the mean over examples; the unclipped score is kept for it.
    assert points_score(criteria, [r["met"] for r in rows]) == pytest.approx(-4.0)


# --- the judge -------------------------------------------------------------------------------


def _script(prompt: str, _: object) -> dict[str, float]:
    return {"Yes": 0.9, "No": 0.1} if "GOOD" in prompt else {"Yes": 0.1, "No": 0.9}


async def test_an_items_criteria_replace_the_rubrics_with_a_shared_prefix() -> None:
    engine = ScriptedEngine(_script)
    criteria = [hb("GOOD one", 3), hb("bad one", 1), hb("GOOD pitfall", -2, [])]
    judgment = await judge_for(rubric()).judge(item(criteria), engine)
    assert len(engine.prompts) == 3
    assert len({p[: p.index("Item: ")] for p in engine.prompts}) == 1  # prefix shared
    rows = judgment.details["criteria"]
    assert [r["met"] for r in rows] == [True, False, True]
    assert judgment.reward == pytest.approx((3 - 2) / 4)
    assert judgment.details["points_score"] == pytest.approx(0.25)
    assert judgment.details["criteria_hash"] == criteria_hash(parse_instance_criteria(criteria))


async def test_allowed_uses_the_rubrics_criteria_when_the_item_has_none() -> None:
    engine = ScriptedEngine(_script)
    judgment = await judge_for(rubric("allowed")).judge(item(None), engine)
    assert [r["id"] for r in judgment.details["criteria"]] == ["own"]
    assert "criteria_hash" not in judgment.details


def test_policy_refusals() -> None:
    with pytest.raises(InvalidItemError, match="takes no instance criteria"):
        judge_for(rubric("forbidden")).check_criteria(item([hb("x", 1)]))
    with pytest.raises(InvalidItemError, match="needs a rubrics field"):
        judge_for(rubric()).check_criteria(item(None))
    plain = parse_rubric({"name": "pw", "mode": "pointwise", "template": "{prompt} {response}",
                          "scores": {"min": 1, "max": 9}})  # fmt: skip
    with pytest.raises(InvalidItemError, match="pointwise mode"):
        judge_for(plain).check_criteria(item([hb("x", 1)]))


def test_required_rubric_may_have_no_criteria_others_may_not() -> None:
    assert rubric().criteria == ()
    with pytest.raises(ValueError, match="at least one criterion"):
        rubric("allowed", criteria=[])


async def test_cost_and_cache_key_follow_the_items_criteria() -> None:
    judge = judge_for(rubric())
    three = item([hb("a", 1), hb("b", 1), hb("c", 1)])
    assert engine_calls(judge, three) == 3
    assert engine_calls(judge_for(rubric("forbidden")), three) == 1  # refused before any call
    scorer = Scorer(ScriptedEngine())
    keys = {scorer.key(judge, item(c)) for c in ([hb("a", 1)], [hb("a", 2)], [hb("b", 1)])}
    assert len(keys) == 3
    plain = JudgeItem(id="x", prompt="p", response="r")
    assert scorer.key(judge, plain) == scorer.key(
        judge, JudgeItem(id="y", prompt="p", response="r")
    )


# --- the wire and the CLI reader -------------------------------------------------------------


def test_bad_criteria_on_the_wire_are_that_items_refusal() -> None:
    good = ScoreItemIn(prompt="p", response="r", rubrics=[hb("x", 1)]).to_input("0")
    assert isinstance(good, JudgeItem) and good.criteria is not None
    bad = ScoreItemIn(prompt="p", response="r", rubrics=[hb("x", "many")]).to_input("1")
    assert not isinstance(bad, JudgeItem) and "points must be a number" in bad.reason
    surrogate = ScoreItemIn(prompt="p", response="r", rubrics=[hb("x\ud800", 1)]).to_input("2")
    assert not isinstance(surrogate, JudgeItem) and "rubrics[0].text" in surrogate.reason
    # on the wire the server's bound refuses a long list before validating its entries
    long = ScoreItemIn(prompt="p", response="r", rubrics=[None] * 5).to_input("3", max_criteria=4)
    assert not isinstance(long, JudgeItem) and "at most 4" in long.reason


@pytest.fixture
def client() -> Any:
    settings = Settings(rubrics_dir=project_rubrics_dir(), max_inline_criteria=3)
    with TestClient(create_app(settings, ScriptedEngine(_script))) as c:
        yield c


def test_score_endpoint_mixes_good_and_bad_items(client: TestClient) -> None:
    many = [hb(f"c{i}", 1) for i in range(4)]
    items = [
        {"id": "good", "prompt": "p", "response": "r", "rubrics": [hb("GOOD", 5), hb("no", 5)]},
        {"id": "text", "prompt": "p", "response": "r", "rubrics": [{"points": 1}]},
        {"id": "many", "prompt": "p", "response": "r", "rubrics": many},
        {"id": "none", "prompt": "p", "response": "r"},
    ]
    resp = client.post("/v1/score", json={"rubric": "healthbench", "items": items})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["rubric"]["name"] == "healthbench"
    good, text, many, none = body["results"]
    assert good["status"] == "ok" and good["reward"] == pytest.approx(0.5)
    assert good["details"]["criteria_hash"] and good["usage"]["engine_calls"] == 2
    assert text["status"] == "invalid_input" and "criterion must be non-empty" in text["error"]
    assert many["status"] == "invalid_input" and "JUDGE_MAX_INLINE_CRITERIA" in many["error"]
    assert none["status"] == "invalid_input" and "needs a rubrics field" in none["error"]
    forbidden = client.post("/v1/score", json={"rubric": "helpfulness", "items": items[:1]})
    assert forbidden.json()["results"][0]["status"] == "invalid_input"


def test_rubrics_that_is_not_a_list_is_a_422(client: TestClient) -> None:
    resp = client.post("/v1/score", json={"rubric": "healthbench", "items": [
        {"prompt": "p", "response": "r", "rubrics": {"criterion": "x", "points": 1}}]})  # fmt: skip
    assert resp.status_code == 422
    assert resp.json()["error"]["type"] == "invalid_request"


def test_cli_reader_takes_healthbench_rows(tmp_path: Path) -> None:
    parsed = read_items(ROWS)
    assert [p.id for p in parsed] == ["hb-own-1", "hb-own-2", "hb-own-3"]
    first = parsed[0].item
    assert first is not None and first.criteria is not None
    assert [c.weight for c in first.criteria] == [6, 5, 4, -7]
    bad = tmp_path / "bad.jsonl"
    row = json.loads(ROWS.read_text().splitlines()[0])
    bad.write_text(json.dumps(row | {"rubrics": [hb("x", "7")]}) + "\n")
    (line,) = read_items(bad)
    assert (
        line.item is None and line.id == "hb-own-1" and "points must be a number" in str(line.error)
    )


# --- review fixes: bounded points, nulls as absent -------------------------------------------


@pytest.mark.parametrize("points", [10**400, -(10**400), 1e308, 1_000_001])
def test_points_beyond_the_bound_are_refused_not_crashed(points: object) -> None:
    with pytest.raises(InstanceCriteriaError, match=r"rubrics\[0\]: points must be between"):
        parse_instance_criteria([hb("x", points), hb("y", 1)])


def test_huge_points_on_the_wire_are_that_items_refusal(client: TestClient) -> None:
    items = [
        {"id": "huge", "prompt": "p", "response": "r", "rubrics": [hb("x", 10**400)]},
        {"id": "big", "prompt": "p", "response": "r", "rubrics": [hb("x", 1e308), hb("y", 1e308)]},
        {"id": "good", "prompt": "p", "response": "r", "rubrics": [hb("GOOD", 5)]},
    ]
    resp = client.post("/v1/score", json={"rubric": "healthbench", "items": items})
    assert resp.status_code == 200, resp.text
    huge, big, good = resp.json()["results"]
    assert huge["status"] == "invalid_input" and "points must be between" in huge["error"]
    assert big["status"] == "invalid_input" and good["status"] == "ok"


def test_cli_reader_refuses_huge_points_for_that_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    row = json.loads(ROWS.read_text().splitlines()[0])
    bad.write_text(json.dumps(row | {"rubrics": [hb("x", 10**400)]}) + "\n")
    (line,) = read_items(bad)
    assert line.item is None and "points must be between" in str(line.error)


def test_a_sum_that_is_not_finite_is_a_judge_failure_not_a_zero() -> None:
    from judge_server.judges import JudgeFailure
    from judge_server.rubrics.criteria import Criterion

    # model_construct skips the weight bound, as a future path around it would
    huge = [Criterion.model_construct(id=f"c{i}", text="x", weight=1e308, kind="principle")
            for i in range(2)]  # fmt: skip
    with pytest.raises(JudgeFailure, match="finite"):
        aggregate_criteria(huge, [1.0, 1.0], Aggregation(method="points"))


def test_rubric_criterion_weight_is_bounded() -> None:
    with pytest.raises(ValueError, match="less than or equal"):
        rubric("allowed", criteria=[{"id": "a", "text": "x", "weight": 1e308}])


def test_null_weight_kind_tags_count_as_left_out() -> None:
    # what Arrow / `datasets` make of a list whose entries have different keys
    parsed = parse_instance_criteria([
        {"id": "a", "text": "x", "weight": None, "kind": None, "tags": None},
        {"id": "b", "text": "y", "weight": 2, "kind": "hard_rule", "tags": ["t"]},
        {"criterion": "z", "points": 3, "tags": None},
    ])  # fmt: skip
    assert [(c.weight, c.kind, c.tags) for c in parsed] == [
        (1.0, "principle", ()), (2.0, "hard_rule", ("t",)), (3.0, "principle", ())
    ]  # fmt: skip
    with pytest.raises(InstanceCriteriaError, match="not null"):
        parse_instance_criteria([{"criterion": "z", "points": None}])


def test_a_composite_of_a_rubric_that_needs_item_criteria_is_refused(client: TestClient) -> None:
    composite = {"name": "both", "mode": "composite",
                 "components": [{"rubric": "helpfulness"}, {"rubric": "healthbench"}]}  # fmt: skip
    resp = client.post("/v1/score", json={"rubric": composite, "items": [
        {"prompt": "p", "response": "r"}]})  # fmt: skip
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_rubric" and "instance_criteria: required" in error["message"]
