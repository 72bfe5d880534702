"""Pairwise mode at the engine seam: both-order averaging, position bias, item contract."""

from collections.abc import Iterator, Sequence

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.judges import InvalidItemError, JudgeItem, judge_for
from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import read_rubric_file
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import Script, ScriptedEngine

PAIRWISE = parse_rubric(
    {
        "name": "pair",
        "mode": "pairwise",
        "template": "Q {prompt} A: {response_a} B: {response_b} Reply with A or B.",
    }
)
ITEM = JudgeItem(
    id="x", prompt="Capital of France?", response="Paris", metadata={"response_b": "Rome"}
)


def shown_first(prompt: str) -> str:
    """The response in position A, under the test template or the shipped one."""
    if "[Response A]\n" in prompt:
        return prompt.split("[Response A]\n", 1)[1].split("\n\n[Response B]", 1)[0]
    return prompt.split("A: ", 1)[1].split(" B: ", 1)[0]


def prefers(probs: dict[str, tuple[float, float]]) -> Script:
    """Script: (P("A"), P("B")) by the text shown in position A."""

    def script(prompt: str, _: Sequence[str]) -> dict[str, float]:
        p_a, p_b = probs[shown_first(prompt)]
        return {"A": p_a, "B": p_b}

    return script


async def test_both_orders_are_averaged() -> None:
    # Paris first: P(A)=0.8 -> 0.8 for Paris. Rome first: P(A)=0.4 -> 1 - 0.4 = 0.6 for Paris.
    engine = ScriptedEngine(prefers({"Paris": (0.4, 0.1), "Rome": (0.4, 0.6)}))
    judgment = await judge_for(PAIRWISE).judge(ITEM, engine)
    assert judgment.reward == pytest.approx((0.8 + 0.6) / 2)
    details = judgment.details
    assert details["p_a"] == pytest.approx(0.7)
    assert [o["order"] for o in details["orders"]] == ["ab", "ba"]
    assert [o["p_a"] for o in details["orders"]] == pytest.approx([0.8, 0.6])
    assert details["agree"] is True and details["winner"] == "a"
    assert [o["valid_mass"] for o in details["orders"]] == pytest.approx([0.5, 1.0])
    assert details["valid_mass"] == pytest.approx(0.5)
    assert len(engine.prompts) == 2
    ab, ba = engine.prompts
    assert shown_first(ab) == "Paris" and shown_first(ba) == "Rome"
    # The shared prompt comes first: both orders share the prefix up to the responses.
    prefix = ab[: ab.index("A: ")]
    assert "Capital of France?" in prefix and ba.startswith(prefix)
    assert ab.endswith("<assistant>")


async def test_position_biased_judge_gives_half_and_disagrees() -> None:
    engine = ScriptedEngine(lambda _p, _c: {"A": 0.9, "B": 0.0})
    judgment = await judge_for(PAIRWISE).judge(ITEM, engine)
    assert judgment.reward == pytest.approx(0.5)
    assert [o["p_a"] for o in judgment.details["orders"]] == pytest.approx([1.0, 0.0])
    assert judgment.details["agree"] is False


async def test_one_order_when_both_orders_is_off() -> None:
    rubric = parse_rubric({**PAIRWISE.model_dump(), "both_orders": False})
    engine = ScriptedEngine(lambda _p, _c: {"A": 0.9, "B": 0.1})
    judgment = await judge_for(rubric).judge(ITEM, engine)
    assert judgment.reward == pytest.approx(0.9)
    assert len(engine.prompts) == 1 and "agree" not in judgment.details


async def test_identical_texts_are_a_tie_without_a_judge_call() -> None:
    engine = ScriptedEngine(lambda _p, _c: {"A": 0.9, "B": 0.1})
    item = JudgeItem(id="x", prompt="q", response="same", metadata={"response_b": "same"})
    judgment = await judge_for(PAIRWISE).judge(item, engine)
    assert judgment.reward == 0.5 and judgment.details["identical"] is True
    assert engine.prompts == []


@pytest.mark.parametrize("metadata", [{}, {"response_b": 3}, {"other": "x"}])
async def test_item_without_response_b_is_invalid_input(metadata: dict[str, object]) -> None:
    item = JudgeItem(id="x", prompt="q", response="r", metadata=metadata)
    with pytest.raises(InvalidItemError, match=r"metadata\.response_b"):
        judge_for(PAIRWISE).validate(item)
    engine = ScriptedEngine()
    [result] = await Scorer(engine).score(judge_for(PAIRWISE), [item], timeout_s=5)
    assert result.status == "invalid_input" and result.reward is None
    assert engine.prompts == []


def test_preview_shows_both_orders() -> None:
    calls = judge_for(PAIRWISE).preview(ITEM)
    assert [m[-1]["content"] for m in calls] == [
        "Q Capital of France? A: Paris B: Rome Reply with A or B.",
        "Q Capital of France? A: Rome B: Paris Reply with A or B.",
    ]


def test_shipped_rubric_puts_the_prompt_first() -> None:
    rubric = read_rubric_file(project_rubrics_dir() / "pairwise.yaml", parse_rubric)
    assert rubric.mode == "pairwise" and rubric.both_orders
    assert rubric.template is not None
    at = rubric.template.index
    assert at("{prompt}") < at("{response_a}") < at("{response_b}")
    assert "Reply with A or B" in rubric.template


@pytest.fixture
def client() -> Iterator[TestClient]:
    engine = ScriptedEngine(prefers({"Paris": (0.7, 0.3), "Rome": (0.2, 0.8)}))
    app = create_app(Settings(rubrics_dir=project_rubrics_dir()), engine)
    with TestClient(app) as c:
        yield c


def test_score_endpoint_with_the_pairwise_rubric(client: TestClient) -> None:
    inline = PAIRWISE.model_dump(mode="json", exclude_defaults=True)
    items = [
        {"id": "ok", "prompt": "Capital of France?", "response": "Paris",
         "metadata": {"response_b": "Rome"}},
        {"id": "missing", "prompt": "Capital of France?", "response": "Paris"},
    ]  # fmt: skip
    resp = client.post("/v1/score", json={"rubric": inline, "items": items})
    assert resp.status_code == 200, resp.text
    ok, missing = resp.json()["results"]
    assert ok["status"] == "ok" and ok["reward"] == pytest.approx((0.7 + 0.8) / 2)
    assert [o["order"] for o in ok["details"]["orders"]] == ["ab", "ba"]
    assert ok["details"]["agree"] is True
    assert missing["status"] == "invalid_input" and missing["reward"] is None
    assert "response_b" in missing["error"]
    shipped = client.post("/v1/score", json={"rubric": "pairwise", "items": items[:1]})
    [result] = shipped.json()["results"]
    assert result["status"] == "ok" and result["reward"] == pytest.approx(0.75)
