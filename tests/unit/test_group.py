"""Group scoring: pairing plans, win rates, Bradley-Terry, and POST /v1/score/group."""

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.judges.group import (
    all_pairs,
    anchor_pairs,
    bradley_terry,
    pair_outcomes,
    plan_group,
    round_robin_pairs,
    standings,
)
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import Script, ScriptedEngine
from tests.unit.test_api import assert_envelope

# Hidden strength of each response: the fake judge prefers the stronger one (Bradley-Terry).
STRENGTH = {"terrible": -2.0, "poor": -1.0, "fine": 0.0, "good": 1.0, "great": 2.0}


def shown(prompt: str) -> tuple[str, str]:
    """(response in position A, response in position B) under the shipped pairwise template."""
    body = prompt.split("[Response A]\n", 1)[1]
    first, rest = body.split("\n\n[Response B]\n", 1)
    return first, rest.split("\n\nWhich response", 1)[0]


def by_strength(prompt: str, _: Sequence[str]) -> dict[str, float]:
    first, second = shown(prompt)
    p = 1.0 / (1.0 + math.exp(STRENGTH.get(second, 0.0) - STRENGTH.get(first, 0.0)))
    return {"A": p, "B": 1.0 - p}


def connected(n: int, pairs: Sequence[tuple[int, int]]) -> bool:
    seen, todo = {0}, [0]
    while todo:
        k = todo.pop()
        for i, j in pairs:
            for a, b in ((i, j), (j, i)):
                if a == k and b not in seen:
                    seen.add(b)
                    todo.append(b)
    return len(seen) == n


# --- pure logic -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(2, 13))
def test_pairing_counts(n: int) -> None:
    assert len(set(all_pairs(n))) == len(all_pairs(n)) == n * (n - 1) // 2
    for rounds in (1, 2, 3):
        pairs = round_robin_pairs(n, rounds)
        assert all(i < j for i, j in pairs) and len(set(pairs)) == len(pairs)
        assert connected(n, pairs)
        if 2 * rounds < n:  # cheaper than all pairs, and balanced
            assert len(pairs) == n * rounds
            degree = Counter(k for pair in pairs for k in pair)
            assert set(degree.values()) == {2 * rounds}
        else:
            assert pairs == all_pairs(n)
    for m in range(1, n + 1):
        pairs = anchor_pairs(n, range(m))
        assert len(pairs) == m * (m - 1) // 2 + m * (n - m)
        assert connected(n, pairs)


def test_round_robin_is_much_cheaper_for_large_groups() -> None:
    assert len(round_robin_pairs(64, 2)) == 128 < len(all_pairs(64)) == 2016


def test_plan_judges_each_distinct_text_pair_once_in_prefix_order() -> None:
    plan = plan_group(["x", "y", "x", "z", "y"])
    assert plan.texts == ["x", "y", "z"] and plan.text_of == [0, 1, 0, 2, 1]
    assert len(plan.pairs) == 10
    assert plan.calls == [(0, 1), (0, 2), (1, 2)]  # calls showing one text first are adjacent
    # Anchors are distinct texts: "x" twice would be one anchor.
    anchored = plan_group(["x", "x", "y", "z"], "anchor", anchors=2)
    assert {i for pair in anchored.pairs for i in pair if i in (0, 2)} == {0, 2}
    assert (0, 1) in anchored.pairs and (1, 3) not in anchored.pairs


def test_outcomes_flip_with_the_shown_order_and_identical_texts_tie() -> None:
    plan = plan_group(["x", "y", "x"])  # pairs (0,1) (0,2) (1,2)
    outcomes = pair_outcomes(plan, {(0, 1): 0.8})
    assert outcomes == pytest.approx([0.8, 0.5, 0.2])
    table = standings(plan, outcomes)
    assert sum(s.wins for s in table) == pytest.approx(len(plan.pairs))
    assert table[0].win_rate == pytest.approx((0.8 + 0.5) / 2) == table[2].win_rate
    assert table[1].win_rate == pytest.approx(0.2)


def test_failures_are_excluded_never_losses() -> None:
    plan = plan_group(["x", "y", "x", "z"])
    outcomes = pair_outcomes(plan, {(0, 1): None, (0, 2): 0.9, (1, 2): None})
    table = standings(plan, outcomes)
    # "y" failed everywhere: no score. The two "x" keep their tie and their win over "z".
    assert not table[1].ok and table[1].win_rate is None and table[1].failed == 3
    assert table[0].comparisons == 2 and table[0].failed == 1
    assert table[0].win_rate == pytest.approx((0.5 + 0.9) / 2)
    # A tie with its own copy does not rescue a response whose judged comparisons all failed.
    lone = plan_group(["x", "x", "y"])
    table = standings(lone, pair_outcomes(lone, {(0, 1): None}))
    assert [s.ok for s in table] == [False, False, False]
    # ...but a group of copies only is a plain tie.
    same = plan_group(["x", "x"])
    assert standings(same, pair_outcomes(same, {}))[0].win_rate == 0.5


def test_bradley_terry_recovers_strength_order() -> None:
    strengths = [0.3, -1.0, 2.0, 0.0, -0.4]
    pairs = all_pairs(len(strengths))
    outcomes = [1 / (1 + math.exp(strengths[j] - strengths[i])) for i, j in pairs]
    fit = bradley_terry(len(strengths), pairs, outcomes)
    assert all(s is not None for s in fit)
    scores = [s for s in fit if s is not None]
    assert sorted(range(5), key=lambda k: scores[k]) == sorted(range(5), key=lambda k: strengths[k])
    assert sum(scores) == pytest.approx(0.0, abs=1e-9)
    # Exact BT probabilities: the fit matches up to the prior's slight shrinkage.
    assert scores[2] - scores[1] == pytest.approx(3.0, rel=0.1)


def test_bradley_terry_stays_finite_when_one_response_wins_everything() -> None:
    pairs = all_pairs(6)
    fit = bradley_terry(6, pairs, [1.0] * len(pairs))  # i always beats j > i
    scores = [s for s in fit if s is not None]
    assert len(scores) == 6 and all(math.isfinite(s) for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert bradley_terry(3, [(0, 1), (1, 2)], [0.7, None])[2] is None


# --- POST /v1/score/group ---------------------------------------------------------------------


@dataclass
class Fixture:
    client: TestClient
    engine: ScriptedEngine


def make(script: Script = by_strength, max_items: int = 4096) -> Iterator[Fixture]:
    engine = ScriptedEngine(script)
    settings = Settings(rubrics_dir=project_rubrics_dir(), max_items_per_request=max_items)
    app = create_app(settings, engine)
    with TestClient(app) as c:
        yield Fixture(c, engine)


@pytest.fixture
def fx() -> Iterator[Fixture]:
    yield from make()


def group(responses: list[str], **options: object) -> dict[str, object]:
    body: dict[str, object] = {
        "rubric": "pairwise",
        "prompt": "Explain tides.",
        "responses": responses,
    }
    if options:
        body["options"] = options
    return body


def post(fx: Fixture, body: dict[str, object]) -> dict[str, object]:
    resp = fx.client.post("/v1/score/group", json=body)
    assert resp.status_code == 200, resp.text
    out: dict[str, object] = resp.json()
    return out


def test_win_rates_hand_out_one_point_per_comparison(fx: Fixture) -> None:
    names = ["fine", "great", "terrible", "good", "poor"]
    body = post(fx, group(names))
    results, comparisons = body["results"], body["comparisons"]
    assert isinstance(results, list) and isinstance(comparisons, list)
    assert body["rubric"]["name"] == "pairwise" and body["model"] == "fake-judge"  # type: ignore[index]
    assert body["pairing"] == {
        "strategy": "all_pairs", "rounds": None, "anchors": None, "comparisons": 10,
        "judge_calls": 10,
    }  # fmt: skip
    assert [r["index"] for r in results] == list(range(5))
    assert all(r["status"] == "ok" and 0 <= r["reward"] <= 1 for r in results)
    assert len(comparisons) == 10
    assert sum(r["details"]["wins"] for r in results) == pytest.approx(len(comparisons))
    for r in results:
        assert r["details"]["comparisons"] == 4
        assert r["reward"] == pytest.approx(r["details"]["wins"] / 4)
    for c in comparisons:  # the points of each comparison go to its two sides
        assert c["status"] == "ok" and c["agree"] is True and c["i"] < c["j"]
        expected = 1 / (1 + math.exp(STRENGTH[names[c["j"]]] - STRENGTH[names[c["i"]]]))
        assert c["p_i_beats_j"] == pytest.approx(expected)
    rank = sorted(range(5), key=lambda k: STRENGTH[names[k]])
    assert sorted(range(5), key=lambda k: results[k]["reward"]) == rank
    assert sorted(range(5), key=lambda k: results[k]["details"]["bt_score"]) == rank
    assert len(fx.engine.prompts) == 20  # both orders of each of 10 pairs


def test_identical_responses_are_judged_once_and_tie(fx: Fixture) -> None:
    body = post(fx, group(["good", "poor", "good", "fine", "poor"]))
    results, comparisons = body["results"], body["comparisons"]
    assert isinstance(results, list) and isinstance(comparisons, list)
    assert body["pairing"]["judge_calls"] == 3  # type: ignore[index]
    assert len(fx.engine.prompts) == 6  # 3 distinct pairs, both orders
    assert results[0]["reward"] == results[2]["reward"]
    assert results[1]["reward"] == results[4]["reward"]
    ties = [(c["i"], c["j"]) for c in comparisons if c["identical"]]
    assert ties == [(0, 2), (1, 4)]
    assert all(c["p_i_beats_j"] == 0.5 for c in comparisons if c["identical"])
    assert len(comparisons) == 10
    assert sum(r["details"]["wins"] for r in results) == pytest.approx(len(comparisons))
    assert results[0]["details"]["bt_score"] == pytest.approx(results[2]["details"]["bt_score"])


def test_cheaper_pairings(fx: Fixture) -> None:
    names = [f"r{k}" for k in range(10)]
    body = post(fx, group(names, pairing="round_robin", rounds=2))
    assert body["pairing"]["comparisons"] == 20 < 45  # type: ignore[index]
    assert body["pairing"]["rounds"] == 2  # type: ignore[index]
    assert all(r["details"]["comparisons"] == 4 for r in body["results"])  # type: ignore[attr-defined]
    assert len(fx.engine.prompts) == 40
    body = post(fx, group(names, pairing="anchor"))  # default: 2 anchors
    assert body["pairing"]["anchors"] == 2 and body["pairing"]["comparisons"] == 17  # type: ignore[index]
    assert all(r["status"] == "ok" for r in body["results"])  # type: ignore[attr-defined]


def test_failed_comparisons_are_excluded_not_losses(fx: Fixture) -> None:
    body = post(fx, group(["good", "fine", "ENGINE-FAIL", "poor"]))
    results, comparisons = body["results"], body["comparisons"]
    assert isinstance(results, list) and isinstance(comparisons, list)
    failed = results[2]
    assert failed["status"] == "judge_error" and failed["reward"] is None
    assert "scripted engine failure" in failed["error"]
    assert failed["details"]["comparisons"] == 0 and failed["details"]["failed"] == 3
    assert failed["details"]["bt_score"] is None
    for k in (0, 1, 3):
        assert results[k]["status"] == "ok"
        assert results[k]["details"]["comparisons"] == 2 and results[k]["details"]["failed"] == 1
    bad = [c for c in comparisons if 2 in (c["i"], c["j"])]
    assert all(c["status"] == "judge_error" and c["p_i_beats_j"] is None for c in bad)
    assert results[0]["reward"] > results[1]["reward"] > results[3]["reward"]


def test_a_response_that_always_times_out_gets_timeout(fx: Fixture) -> None:
    body = post(fx, group(["good", "SLOW", "fine"], timeout_s=0.2))
    statuses = [r["status"] for r in body["results"]]  # type: ignore[attr-defined]
    assert statuses == ["ok", "timeout", "ok"]


def test_position_biased_judge_cannot_pick_winners() -> None:
    for fx in make(lambda _p, _c: {"A": 0.95, "B": 0.05}):
        body = post(fx, group(["good", "poor", "fine"]))
        assert all(c["agree"] is False for c in body["comparisons"])  # type: ignore[attr-defined]
        assert [r["reward"] for r in body["results"]] == pytest.approx([0.5] * 3)  # type: ignore[attr-defined]


def test_repeated_group_is_served_from_the_cache(fx: Fixture) -> None:
    post(fx, group(["good", "poor", "fine"]))
    calls = len(fx.engine.prompts)
    again = post(fx, group(["fine", "good", "poor"]))
    assert len(fx.engine.prompts) == calls
    assert all(c["cached"] for c in again["comparisons"])  # type: ignore[attr-defined]
    rewards = [r["reward"] for r in again["results"]]  # type: ignore[attr-defined]
    assert rewards[1] > rewards[0] > rewards[2]


def test_chat_prompt_and_reference(fx: Fixture) -> None:
    body = group(["good", "poor"])
    body["prompt"] = [{"role": "user", "content": "Explain tides."}]
    body["reference"] = "The moon."
    assert [r["status"] for r in post(fx, body)["results"]] == ["ok", "ok"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("patch", "status", "type_", "param"),
    [
        ({"responses": ["only one"]}, 422, "invalid_request", "responses"),
        ({"responses": []}, 422, "invalid_request", "responses"),
        ({"responses": "x"}, 422, "invalid_request", "responses"),
        ({"prompt": None}, 422, "invalid_request", None),
        ({"rubric": "helpfulness"}, 422, "invalid_rubric", "rubric"),
        ({"rubric": "no-such-rubric"}, 404, "rubric_not_found", "rubric"),
        ({"options": {"pairing": "swiss"}}, 422, "invalid_request", "options.pairing"),
        ({"options": {"rounds": 2}}, 422, "invalid_request", "options"),
        ({"options": {"pairing": "anchor", "anchors": 0}}, 422, "invalid_request", None),
    ],
)
def test_bad_group_requests_get_the_error_envelope(
    fx: Fixture, patch: dict[str, object], status: int, type_: str, param: str | None
) -> None:
    body = {**group(["good", "poor", "fine"]), **patch}
    assert_envelope(fx.client.post("/v1/score/group", json=body), status, type_, param)
    assert fx.engine.prompts == []


def test_too_many_comparisons_is_413_and_round_robin_fits() -> None:
    for fx in make(max_items=10):
        names = [f"r{k}" for k in range(6)]
        resp = fx.client.post("/v1/score/group", json=group(names))  # 15 comparisons
        assert_envelope(resp, 413, "too_many_items", "responses")
        body = post(fx, group(names, pairing="round_robin", rounds=1))
        assert body["pairing"]["comparisons"] == 6  # type: ignore[index]
