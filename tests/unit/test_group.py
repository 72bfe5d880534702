"""Group scoring: pairing plans, win rates, Bradley-Terry, and POST /v1/score/group."""

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.judges.group import (
    GroupPlan,
    Pairing,
    all_pairs,
    anchor_pairs,
    bradley_terry,
    pair_outcomes,
    plan_group,
    round_robin_pairs,
    standings,
    text_strengths,
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


# --- copies of one text get one reward, whatever the pairing ----------------------------------

PAIRINGS = [
    ("all_pairs", {}),
    ("round_robin", {"rounds": 1}),
    ("round_robin", {"rounds": 2}),
    ("anchor", {"anchors": 1}),
    ("anchor", {"anchors": 2}),
    ("anchor", {"anchors": 3}),
]
SHAPES = [
    "xyx",
    "xxyz",
    "xxx",
    "abacba",
    "abcadefa",
    "abababc",
    "uvwxyzuv",
    "abcdefghia",
    "aabbccddee",
]


def synthetic(plan: GroupPlan, seed: int, fail_rate: float) -> dict[tuple[int, int], float | None]:
    """P(text a beats text b) per judge call; None for a failed call."""
    rng = random.Random(seed)
    return {call: None if rng.random() < fail_rate else rng.random() for call in plan.calls}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("pairing", "options"), PAIRINGS, ids=lambda v: str(v))
@pytest.mark.parametrize(("seed", "fail_rate"), [(0, 0.0), (1, 0.0), (2, 0.3), (3, 0.6)])
def test_copies_share_their_texts_pooled_record(
    shape: str, pairing: Pairing, options: dict[str, int], seed: int, fail_rate: float
) -> None:
    responses = list(shape)
    plan = plan_group(responses, pairing, **options)
    outcomes = pair_outcomes(plan, synthetic(plan, seed, fail_rate))
    table = standings(plan, outcomes)
    bt = text_strengths(plan, outcomes)
    for text in set(responses):
        copies = [k for k, r in enumerate(responses) if r == text]
        assert len({table[k] for k in copies}) == 1  # one standing: win rate, status, counts
        assert len({bt[k] for k in copies}) == 1
        # The pooled record, counted from the outcomes by hand.
        sides = [
            p if responses[i] == text else 1.0 - p
            for (i, j), p in zip(plan.pairs, outcomes, strict=True)
            for k in (i, j)
            if responses[k] == text and p is not None
        ]
        failed = sum(
            (responses[i] == text) + (responses[j] == text)
            for (i, j), p in zip(plan.pairs, outcomes, strict=True)
            if p is None
        )
        ties = sum(2 for i, j in plan.pairs if responses[i] == responses[j] == text)
        standing = table[copies[0]]
        assert standing.ok == (len(sides) > ties or (sides != [] and failed == 0))
        if standing.ok:
            assert standing.win_rate == pytest.approx(sum(sides) / len(sides))
        assert standing.comparisons * len(copies) == pytest.approx(len(sides))
        assert standing.failed * len(copies) == pytest.approx(failed)
    # Still one point per judged comparison, shared between its two sides.
    judged = sum(p is not None for p in outcomes)
    assert sum(s.wins for s in table) == pytest.approx(judged)
    # Bradley-Terry over distinct texts: the fit of the same outcomes between texts.
    by_text = bradley_terry(
        len(plan.texts), [(plan.text_of[i], plan.text_of[j]) for i, j in plan.pairs], outcomes
    )
    assert bt == pytest.approx([by_text[t] for t in plan.text_of])


def test_the_property_test_sees_copies_that_meet_different_opponents() -> None:
    # Without pooling these copies' own win rates differ: the test above would catch that.
    plan = plan_group(list("abcadefa"), "round_robin", rounds=1)
    outcomes = pair_outcomes(plan, synthetic(plan, 0, 0.0))
    own = [0.0] * 8
    for (i, j), p in zip(plan.pairs, outcomes, strict=True):
        assert p is not None
        own[i] += p
        own[j] += 1.0 - p
    assert len({round(own[k], 9) for k in (0, 3, 7)}) == 3


# Rewards and Bradley-Terry scores of groups without copies, as computed before copies were
# pooled: pooling must leave them exactly as they were.
DISTINCT = ["fine", "great", "terrible", "good", "poor", "r5", "r6"]
BEFORE_POOLING = [
    (
        "all_pairs",
        {},
        [0.5, 0.884673, 0.115327, 0.715915, 0.284085, 0.5, 0.5],
        [0.0, 1.867491, -1.867491, 0.940216, -0.940216, 0.0, 0.0],
    ),
    (
        "round_robin",
        {"rounds": 1},
        [0.309601, 0.931405, 0.032706, 0.916686, 0.194072, 0.615529, 0.5],
        [-0.176107, 1.530132, -1.452061, 1.004961, -0.856745, 0.021159, -0.071338],
    ),
    (
        "round_robin",
        {"rounds": 2},
        [0.5, 0.868667, 0.113389, 0.708343, 0.347036, 0.5, 0.462565],
        [-0.000023, 1.802095, -1.790183, 0.894386, -0.900565, -0.002269, -0.003441],
    ),
    (
        "anchor",
        {"anchors": 2},
        [0.5, 0.884673, 0.068595, 0.5, 0.158184, 0.309601, 0.309601],
        [-0.016272, 1.816719, -1.594531, 0.804887, -0.888653, -0.061075, -0.061075],
    ),
]


@pytest.mark.parametrize(("pairing", "options", "rewards", "bt_scores"), BEFORE_POOLING)
def test_groups_without_copies_keep_their_numbers(
    fx: Fixture,
    pairing: Pairing,
    options: dict[str, int],
    rewards: list[float],
    bt_scores: list[float],
) -> None:
    body = post(fx, group(DISTINCT, pairing=pairing, **options))
    results = body["results"]
    assert isinstance(results, list)
    assert [r["reward"] for r in results] == pytest.approx(rewards, abs=1e-6)
    assert [r["details"]["bt_score"] for r in results] == pytest.approx(bt_scores, abs=1e-6)
    # ...and exactly the per-response arithmetic: standings and a fit over positions.
    plan = plan_group(DISTINCT, pairing, **options)
    outcomes = [c["p_i_beats_j"] for c in body["comparisons"]]  # type: ignore[attr-defined]
    fit = bradley_terry(len(DISTINCT), plan.pairs, outcomes)
    assert [r["details"]["bt_score"] for r in results] == fit
    for r in results:
        assert type(r["details"]["comparisons"]) is int
        assert r["reward"] == r["details"]["wins"] / r["details"]["comparisons"]


@pytest.mark.parametrize(("pairing", "options"), PAIRINGS, ids=lambda v: str(v))
def test_copies_get_one_result_on_the_endpoint(
    fx: Fixture, pairing: str, options: dict[str, int]
) -> None:
    names = ["good", "terrible", "great", "good", "poor", "fine", "good", "great", "poor"]
    body = post(fx, group(names, pairing=pairing, **options))
    results, comparisons = body["results"], body["comparisons"]
    assert isinstance(results, list) and isinstance(comparisons, list)
    assert all(r["status"] == "ok" for r in results)
    for text in set(names):
        copies = [results[k] for k, name in enumerate(names) if name == text]
        assert all(
            (c["status"], c["reward"], c["details"])
            == (copies[0]["status"], copies[0]["reward"], copies[0]["details"])
            for c in copies
        )
    assert sum(r["details"]["wins"] for r in results) == pytest.approx(len(comparisons))
    rank = sorted(set(names), key=STRENGTH.__getitem__)
    reward_of = {name: results[k]["reward"] for k, name in enumerate(names)}
    assert sorted(reward_of, key=reward_of.__getitem__) == rank
    assert len(fx.engine.prompts) == 2 * body["pairing"]["judge_calls"]  # type: ignore[index]


def test_a_copy_whose_own_comparisons_failed_takes_its_texts_record(fx: Fixture) -> None:
    # round_robin, 1 round: the copy at 1 meets only the two failing texts, the copy at 4 meets
    # "poor" and "fine". Both get the record of "good": its comparisons with "poor" and "fine".
    names = ["ENGINE-FAIL one", "good", "ENGINE-FAIL two", "poor", "good", "fine"]
    body = post(fx, group(names, pairing="round_robin", rounds=1))
    results = body["results"]
    assert isinstance(results, list)
    assert [r["status"] for r in results] == ["judge_error", "ok", "judge_error", "ok", "ok", "ok"]
    assert results[1]["reward"] == results[4]["reward"] and results[1]["reward"] > 0.5
    assert results[1]["details"] == results[4]["details"]
    assert results[1]["details"]["comparisons"] == 1 and results[1]["details"]["failed"] == 1
    assert results[1]["details"]["bt_score"] == results[4]["details"]["bt_score"]
