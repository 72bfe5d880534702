"""The content-free guard: answer-free responses are refused, genuine short answers never are."""

import pytest

from judge_server.cli.evaluation.data import VerifyCase
from judge_server.cli.evaluation.guard_report import guard_rates, kind_rows
from judge_server.cli.evaluation.run import false_positive_table
from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.answer_guard import GUARD_METHOD, answer_free_judgment
from judge_server.judges.answers.content_free import answer_free_reason
from judge_server.judges.modes import parse_rubric
from judge_server.judges.workers import shared_pool
from judge_server.rubrics.registry import read_rubric_file
from judge_server.service import ItemResult
from judge_server.settings import project_rubrics_dir
from tests.fakes import ScriptedEngine

CAPITAL = "What is the capital of France?"
CORRECTNESS = read_rubric_file(project_rubrics_dir() / "correctness.yaml", parse_rubric)
VERIFY = read_rubric_file(project_rubrics_dir() / "verify.yaml", parse_rubric)


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("", "empty"),
        ("```python\n\n```", "empty"),
        ("**\n---\n> ", "empty"),
        ("$\\boxed{}$", "empty"),
        ("<answer></answer>", "empty"),
        ("Solution", "filler_only"),
        ("Let's solve this step by step.", "filler_only"),
        ("The answer is above.", "filler_only"),
        ("See below.", "filler_only"),
        ("I don't know.", "filler_only"),
        ("Yes", "filler_only"),
        ("Je ne sais pas.", "filler_only"),
        ("La respuesta está arriba.", "filler_only"),
        ("Ich weiß es nicht.", "filler_only"),
        ("Ответ выше.", "filler_only"),
        ("答案在上面。", "filler_only"),
        ("わかりません。", "filler_only"),
        ("답은 위에 있습니다.", "filler_only"),
        ("मुझे नहीं पता।", "filler_only"),
        ("The capital of France", "restates_question"),
        (f"Question: {CAPITAL}\nAnswer:", "restates_question"),
    ],
)
def test_answer_free_responses_are_refused(response: str, reason: str) -> None:
    assert answer_free_reason(response, "Paris", CAPITAL) == reason


@pytest.mark.parametrize(
    ("response", "reference", "question"),
    [
        ("Paris", "Paris", CAPITAL),
        ("paris.", "Paris", CAPITAL),
        ("I believe it is Paris, the city of light.", "Paris", CAPITAL),
        ("巴黎", "巴黎", "法国的首都是哪里？"),
        ("4", "4", "What is 2+2?"),
        ("four", "4", "What is 2+2?"),
        ("eight", "8", "How many planets are there?"),
        ("B", "B", "Which is the capital? A) Lyon B) Paris"),
        ("(B) Paris", "B", "Which is the capital? A) Lyon B) Paris"),
        ("B", "Paris", "Which is the capital? A) Lyon B) Paris"),
        ("The answer is (a).", "Lyon", "Which city? (a) Lyon (b) Paris"),
        ("Yes", "Yes", "Is Paris in France?"),
        ("Indeed it is.", "Yes", "Is Paris in France?"),  # a yes/no reference: the judge decides
        ("Yes", "True", "Is Paris in France?"),
        ("\\frac{1}{2}", "0.5", "What is half of one?"),
        ("Red, white and blue", "blue, white, red", "What colours is the Dutch flag?"),
        ("16", "16", "Janet's ducks lay 16 eggs per day. How many eggs do they lay?"),
        ("A cake", "Cake", "Is a jaffa cake a biscuit or a cake?"),
        ("September", "till September", "How long does the season last?"),
        ("The Who", "The Who", "Which band wrote Tommy?"),
    ],
)
def test_genuine_answers_pass(response: str, reference: str, question: str) -> None:
    assert answer_free_reason(response, reference, question) is None


def test_a_number_the_question_gives_is_no_answer_unless_it_is_the_reference() -> None:
    question = "Janet's ducks lay 16 eggs per day. She eats 3. How many are left?"
    assert answer_free_reason(question, "13", question) == "restates_question"
    assert answer_free_reason("She has 13 left.", "13", question) is None


@pytest.mark.parametrize("response", ["Keine Ahnung.", "Paris", "Berlin, I think"])
def test_against_a_numeric_reference_an_answer_names_a_number(response: str) -> None:
    assert answer_free_reason(response, "18", "How many eggs?") == "no_number"


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        ("18", "18"),
        ("$18.00", "18"),
        ("eighteen", "18"),
        ("zero", "0"),
        ("None", "0"),
        ("one", "1"),
        ("twice", "2"),
        ("0.333333", "1/3"),
        ("The total is 1,000 dollars.", "1000"),
    ],
)
def test_numbers_in_any_form_answer_a_numeric_reference(response: str, reference: str) -> None:
    assert answer_free_reason(response, reference, "How many eggs?") is None


async def test_the_guard_applies_only_to_rubrics_that_show_the_reference() -> None:
    item = JudgeItem("a", CAPITAL, "Solution", reference="Paris")
    helpful = parse_rubric(
        {"name": "h", "mode": "verdict", "template": "{prompt} {response} Good? Yes or No."}
    )
    assert await answer_free_judgment(helpful, item, shared_pool()) is None
    blocked = await answer_free_judgment(CORRECTNESS, item, shared_pool())
    assert blocked is not None and blocked.reward == 0.0
    assert blocked.details == {
        "method": GUARD_METHOD,
        "answer_guard": "filler_only",
        "has_answer": False,
    }
    assert await answer_free_judgment(
        CORRECTNESS, JudgeItem("b", CAPITAL, "Solution"), shared_pool()
    ) is None


@pytest.mark.parametrize("rubric", [CORRECTNESS, VERIFY], ids=["correctness", "verify"])
async def test_a_gullible_judge_never_sees_content_free_responses(rubric: object) -> None:
    engine = ScriptedEngine(lambda _p, _c: {"Yes": 1.0, "No": 0.0})
    judge = judge_for(rubric)  # type: ignore[arg-type]
    blocked = await judge.judge(JudgeItem("a", CAPITAL, "See above.", reference="Paris"), engine)
    assert blocked.reward == 0.0 and blocked.details["method"] == GUARD_METHOD
    assert engine.prompts == []
    judged = await judge.judge(JudgeItem("b", CAPITAL, "It is Paris.", reference="Paris"), engine)
    assert judged.details.get("method") != GUARD_METHOD


def test_guard_rates_count_false_positives_per_kind_and_blocked_correct_answers() -> None:
    cases = [
        VerifyCase("1", "s", "q", "Paris", "Solution", False, "filler"),
        VerifyCase("2", "s", "q", "Paris", "Hmm", False, "filler"),
        VerifyCase("3", "s", "q", "Paris", "", False, "formatting"),
        VerifyCase("4", "s", "q", "Paris", "Paris", True, "gold"),
        VerifyCase("5", "s", "q", "Paris", "paris", True, "alternative"),
        VerifyCase("6", "s", "q", "Paris", "x", False, "formatting"),
    ]
    guard = {"method": GUARD_METHOD}
    results = [
        ItemResult("1", "ok", 0.0, guard),
        ItemResult("2", "ok", 0.9, {"method": "llm_verdict"}),
        ItemResult("3", "ok", 0.0, guard),
        ItemResult("4", "ok", 0.0, guard),
        ItemResult("5", "ok", 1.0, {"method": "exact"}),
        ItemResult("6", "judge_error", None, {}),  # a failure is not counted as a verdict
    ]
    rates = guard_rates(cases, results)
    assert rates == {
        "left_out_failed": 1.0,
        "false_positive_rate": 1 / 3,
        "fp_filler": 0.5,
        "fp_formatting": 0.0,
        "guard_blocked_correct": 0.5,
        "blocked_alternative": 0.0,
        "blocked_gold": 1.0,
    }
    assert kind_rows(cases, results) == [
        {"kind": "filler", "side": "fp", "n": 2, "rate": 0.5},
        {"kind": "formatting", "side": "fp", "n": 1, "rate": 0.0},
        {"kind": "alternative", "side": "fn", "n": 1, "rate": 0.0},
        {"kind": "gold", "side": "fn", "n": 1, "rate": 1.0},
    ]


def test_false_positive_table_has_a_row_per_rubric_mode_and_source() -> None:
    report = {
        "verify@abc": (
            "verify",
            [
                {"source": "content-free: text", "n": 10, "false_positive_rate": 0.0},
                {
                    "source": "nq-open",
                    "n": 4,
                    "false_positive_rate": 0.25,
                    "guard_blocked_correct": 0.0,
                    "left_out_failed": 2.0,
                },
            ],
        ),
        "helpfulness@def": ("pointwise", [{"source": "llmbar", "n": 4, "value": 0.5}]),
    }
    table = false_positive_table(report)
    assert [(t["rubric"], t["mode"], t["source"]) for t in table] == [
        ("verify@abc", "verify", "content-free: text"),
        ("verify@abc", "verify", "nq-open"),
    ]
    assert table[1]["false_positive_rate"] == 0.25 and table[1]["guard_blocked_correct"] == 0.0
    assert table[0]["guard_blocked_correct"] is None
    assert [t["left_out_failed"] for t in table] == [0, 2]


def test_against_a_numeric_reference_another_number_is_refused() -> None:
    assert answer_free_reason("19", "18", "How many eggs?") == "misses_reference"
    assert answer_free_reason("My answer is the expected one.", "18", "How many?") == (
        "misses_reference"
    )


@pytest.mark.parametrize(
    ("response", "reference"),
    [("10^3", "1000"), ("2^{10}", "1024")],
)
async def test_verify_guards_only_what_its_exact_check_leaves_undecided(
    response: str, reference: str
) -> None:
    # The guard alone refuses these (no word or number of the reference); the check knows.
    assert answer_free_reason(response, reference, "What is it?") == "misses_reference"
    engine = ScriptedEngine(lambda _p, _c: {"Yes": 0.0, "No": 1.0})
    judgment = await judge_for(VERIFY).judge(
        JudgeItem("a", "What is it?", response, reference=reference), engine
    )
    assert judgment.reward == 1.0 and judgment.details["method"] != GUARD_METHOD
    assert engine.prompts == []


@pytest.mark.parametrize(
    ("response", "reference"),
    [("\\pi", "π"), ("$\\infty$", "\\infty"), ("$\\Omega$", "Ω"), ("\\alpha", "α")],
)
def test_latex_symbols_are_words_of_the_answer(response: str, reference: str) -> None:
    assert answer_free_reason(response, reference, "Which symbol?") is None
