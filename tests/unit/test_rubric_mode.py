import pytest

from judge_server.judges import JudgeFailure, JudgeItem, judge_for
from judge_server.judges.checks import is_valid_json, length_score
from judge_server.judges.modes import parse_rubric
from judge_server.judges.rubric import aggregate_criteria
from judge_server.rubrics.aggregation import Aggregation
from judge_server.rubrics.criteria import Criterion
from judge_server.rubrics.spec import RubricError, RubricSpec
from tests.fakes import ScriptedEngine

TEMPLATE = "C: {prompt}\nR: {response}\nCriterion: {criterion}"
ITEM = JudgeItem(id="x", prompt="Write a haiku", response="Soft rain on the roof")


def rubric(**patch: object) -> RubricSpec:
    data: dict[str, object] = {
        "name": "r",
        "mode": "rubric",
        "template": TEMPLATE,
        "criteria": [
            {"id": "a", "text": "is a haiku", "weight": 2, "kind": "hard_rule"},
            {"id": "b", "text": "mentions rain", "weight": 1},
            {"id": "c", "text": "is offensive", "weight": -1},
        ],
    }
    data.update(patch)
    return parse_rubric(data)


def crit(id_: str, weight: float, kind: str = "principle") -> Criterion:
    return Criterion(id=id_, text=id_, weight=weight, kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("weights", "p_met", "expected"),
    [
        ([2, 1], [1.0, 1.0], 1.0),
        ([2, 1], [1.0, 0.0], 2 / 3),
        ([2, 1, -1], [1.0, 1.0, 1.0], 2 / 3),  # a met pitfall subtracts
        ([2, 1, -3], [0.0, 0.0, 1.0], 0.0),  # clipped at 0
        ([1, 1], [0.5, 0.5], 0.5),  # soft: P(met) weighs in, not just the argmax
    ],
)
def test_weighted_aggregation(weights: list[float], p_met: list[float], expected: float) -> None:
    criteria = [crit(f"c{i}", w) for i, w in enumerate(weights)]
    reward, rows, failed = aggregate_criteria(criteria, p_met, Aggregation())
    assert reward == pytest.approx(expected)
    assert failed == []
    assert [r["met"] for r in rows] == [p >= 0.5 for p in p_met]


def test_failed_hard_rule_caps_reward_at_floor() -> None:
    criteria = [crit("must", 1, "hard_rule"), crit("nice", 9)]
    reward, rows, failed = aggregate_criteria(
        criteria, [0.2, 1.0], Aggregation(hard_rule_floor=0.25)
    )
    assert failed == ["must"]
    assert reward == 0.25  # would be 0.92 without the rule
    assert rows[0]["met"] is False and rows[0]["kind"] == "hard_rule"


async def test_one_call_per_criterion_with_criterion_last() -> None:
    def script(prompt: str, _: object) -> dict[str, float]:
        return {"Yes": 0.9, "No": 0.1} if "mentions rain" in prompt else {"Yes": 0.1, "No": 0.9}

    engine = ScriptedEngine(script)
    judgment = await judge_for(rubric()).judge(ITEM, engine)
    assert len(engine.prompts) == 3
    shared = "C: Write a haiku\nR: Soft rain on the roof\nCriterion: "
    assert all(shared in p for p in engine.prompts)
    # everything before the criterion is identical across calls (the prefix cache's work)
    prefixes = {p[: p.index("Criterion: ")] for p in engine.prompts}
    assert len(prefixes) == 1
    rows = {r["id"]: r for r in judgment.details["criteria"]}
    assert rows["b"]["p_met"] == pytest.approx(0.9)
    assert judgment.details["hard_rules_failed"] == ["a"]
    assert judgment.reward == 0.0  # hard rule 'a' failed, floor 0


async def test_holistic_makes_one_call_listing_all_criteria() -> None:
    r = rubric(
        template="{prompt} {response}\n{criteria}\nScore 1-9:", aggregation={"method": "holistic"}
    )
    engine = ScriptedEngine()
    judgment = await judge_for(r).judge(ITEM, engine)
    assert len(engine.prompts) == 1
    assert "1. (must, weight 2) is a haiku" in engine.prompts[0]
    assert "3. (avoid, weight -1) is offensive" in engine.prompts[0]
    assert judgment.reward == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"template": "Criterion: {criterion}\n{response}"}, "must come before"),
        ({"template": "{prompt} {response}"}, "needs {criterion}"),
        ({"criteria": []}, "at least one criterion"),
        ({"criteria": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "duplicate"),
        ({"criteria": [{"id": "a", "text": "x", "weight": -1}]}, "positive weight"),
        ({"criteria": [{"id": "a", "text": "x", "weight": 0}]}, "weight 0"),
        (
            {"criteria": [{"id": "a", "text": "x", "weight": -1, "kind": "hard_rule"}]},
            "positive weight",
        ),
        ({"aggregation": {"method": "min"}}, "composite"),
    ],
)
def test_rubric_mode_validation(patch: dict[str, object], message: str) -> None:
    with pytest.raises(RubricError, match=message):
        rubric(**patch)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 1.0), (100, 1.0), (150, 0.5), (199, 0.01), (200, 0.0), (900, 0.0)],
)
def test_soft_overlong_ramp(length: int, expected: float) -> None:
    assert length_score(length, max_length=200, buffer=100) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"a": 1}', True),
        ("```json\n[1, 2]\n```", True),
        ("{'a': 1}", False),
        ("", False),
        ('Here: {"a": 1}', False),
    ],
)
def test_valid_json(text: str, ok: bool) -> None:
    assert is_valid_json(text) is ok


PARTS = {
    "judge": parse_rubric({"name": "judge", "mode": "verdict", "template": "{prompt} {response}"}),
}


def composite(**patch: object) -> RubricSpec:
    data: dict[str, object] = {
        "name": "combo",
        "mode": "composite",
        "components": [
            {"rubric": "judge", "weight": 2},
            {"check": "regex_must", "pattern": r"\brain\b"},
            {"check": "regex_must_not", "pattern": "(?i)as an ai"},
            {"check": "length_penalty", "max_length": 4, "overlong_buffer": 2, "unit": "words"},
        ],
    }
    data.update(patch)
    return parse_rubric(data)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # judge P(yes)=0.8 (w2), regex 1, not-regex 1, length: 5 words over a 2..4 ramp -> 0
        ("weighted", (2 * 0.8 + 1 + 1 + 0) / 5),
        ("mean", (0.8 + 1 + 1 + 0) / 4),
        ("min", 0.0),
    ],
)
async def test_composite_combines_judges_and_checks(method: str, expected: float) -> None:
    engine = ScriptedEngine(lambda _p, _c: {"Yes": 0.8, "No": 0.2})
    judge = judge_for(composite(aggregation={"method": method}), PARTS.__getitem__)
    judgment = await judge.judge(ITEM, engine)
    assert judgment.reward == pytest.approx(expected)
    rows = judgment.details["components"]
    assert [r["component"] for r in rows] == [
        "judge",
        "regex_must",
        "regex_must_not",
        "length_penalty",
    ]
    assert rows[0]["rubric"] == {"name": "judge", "version": PARTS["judge"].version}
    assert rows[3]["length"] == 5


def test_composite_validation_and_cycles() -> None:
    with pytest.raises(RubricError, match="exactly one"):
        composite(components=[{"rubric": "a", "check": "valid_json"}])
    with pytest.raises(RubricError, match="invalid regex"):
        composite(components=[{"check": "regex_must", "pattern": "("}])
    with pytest.raises(RubricError, match="itself"):
        composite(components=[{"rubric": "combo"}])
    a = parse_rubric({"name": "a", "mode": "composite", "components": [{"rubric": "b"}]})
    b = parse_rubric({"name": "b", "mode": "composite", "components": [{"rubric": "a"}]})
    with pytest.raises(JudgeFailure, match="deeper"):
        judge_for(a, {"a": a, "b": b}.__getitem__)


@pytest.mark.parametrize(
    ("kind", "params", "raw", "shaped"),
    [
        ("power", {"exponent": 2}, 0.5, 0.25),
        ("threshold", {"threshold": 0.7}, 0.69, 0.0),
        ("threshold", {"threshold": 0.7}, 0.7, 1.0),
        ("affine", {"scale": 2, "offset": -0.5}, 0.9, 1.0),
        ("none", {}, 0.3, 0.3),
    ],
)
def test_shaping(kind: str, params: dict[str, float], raw: float, shaped: float) -> None:
    r = parse_rubric(
        {
            "name": "s",
            "mode": "verdict",
            "template": "{response}",
            "shaping": {"kind": kind, **params},
        }
    )
    assert r.shaping.apply(raw) == pytest.approx(shaped)
