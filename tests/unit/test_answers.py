import json
import re
import threading
import time
from fractions import Fraction
from typing import Any

import pytest

from judge_server.cli.evaluation.data import default_data_dir
from judge_server.judges.answers import (
    check_answer,
    extract_final_answer,
    math_equal,
    math_equivalence,
    numbers_equal,
    reference_kind,
)

GSM8K = default_data_dir() / "gsm8k_test_questions.jsonl"

# Responses with no answer in them; published work shows LLM verifiers accept such "master keys"
# up to 80% of the time.
MASTER_KEYS = [
    ":",
    "Thought process:",
    "Solution",
    "Let me solve this step by step.",
    "",
    "   \n\t",
    "Answer:",
    "The answer is",
    "I think so.",
    "...",
    "**Final answer:**",
    "\\boxed{}",
    "#### ",
]


@pytest.mark.parametrize(
    ("response", "text", "rule"),
    [
        ("so \\boxed{12} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"),
        ("$\\boxed{\\text{18 dollars}}$", "\\text{18 dollars}", "boxed"),
        ("x \\boxed{} \\boxed{7}", "7", "boxed"),
        ("\\boxed{9} then \\boxed{}", "9", "boxed"),
        ("16 - 3 - 4 = 9\n#### 18", "18", "gsm8k"),
        ("#### 5\n\\boxed{6}", "6", "boxed"),
        ("The answer is $1,234.", "$1,234", "statement"),
        ("**Final answer:** 1234 dollars", "1234 dollars", "statement"),
        ("Final Answer: The final answer is $18$. I hope it is correct.", "18", "statement"),
        ("The answer to the first part is 4.", "4", "statement"),
        ("Answer:\n\n42", "42", "statement"),
        ("The answer is (A).", "(A)", "statement"),
        ("The answer is 6.\nThen the total is 2 + 5 = 7", "7", "equals"),
        ("9 * 2 = $18.", "$18", "equals"),
        ("x = \\frac{3}{4}", "\\frac{3}{4}", "equals"),
        ("Adding up the totals.\nTotal: **$18**", "$18", "bold"),
        ("x+1", "x+1", "bare"),
        ("(B)", "(B)", "bare"),
        ("so she makes 18 dollars a day.", "18", "last_number"),
        ("It is -3 degrees", "-3", "last_number"),
        ("pages 3-4", "4", "last_number"),
        ("about 3/4 of it", "3/4", "last_number"),
        ("x = 5, y = 3, so the total is 8", "8", "last_number"),
    ],
)
def test_extraction_rules(response: str, text: str, rule: str) -> None:
    found = extract_final_answer(response)
    assert found is not None
    assert (found.text, found.rule) == (text, rule)


@pytest.mark.parametrize("response", MASTER_KEYS)
def test_no_answer_content_extracts_nothing(response: str) -> None:
    assert extract_final_answer(response) is None


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("1,000", "1000", True),
        ("18.00", "18", True),
        ("$18", "18", True),
        ("\\$1{,}000", "1000", True),
        ("18 dollars a day", "18", True),
        ("5km", "5", True),
        ("50%", "50", True),
        ("3/4", "0.75", True),
        ("\\frac{3}{4}", ".75", True),
        ("-5", "−5", True),
        ("$-5", "-5", True),
        ("-5", "5", False),
        ("1e3", "1000", True),
        ("118 000", "118000", True),
        ("0.333333", "1/3", True),
        ("0.33", "1/3", False),
        ("1450001", "1450000", False),  # exact decimals get no tolerance
        ("17", "18", False),
        ("5x", "5", None),  # an expression, not a quantity
        ("5 and 6", "5", None),
        ("1,2", "12", None),
        ("abc", "1", None),
        ("", "1", None),
        ("1" * 5000, "1", None),  # past Python's int-string limit
    ],
)
def test_numbers_equal(a: str, b: str, equal: bool | None) -> None:
    assert numbers_equal(a, b) is equal


@pytest.mark.parametrize(
    ("reference", "kind"),
    [
        ("18", "numeric"),
        ("$1,000", "numeric"),
        ("5 dollars", "numeric"),
        ("-3", "numeric"),
        ("\\frac{1}{2}", "numeric"),
        ("x^2+1", "math"),
        ("\\sqrt{2}", "math"),
        ("(1, 2)", "math"),
        ("A", "math"),
        ("Paris", "text"),
        ("yes", "text"),
        ("the mitochondria", "text"),
    ],
)
def test_reference_kind(reference: str, kind: str) -> None:
    assert reference_kind(reference) == kind


@pytest.mark.parametrize(
    ("response", "reference", "equivalent", "method"),
    [
        ("The answer is 0.5", "\\frac{1}{2}", True, "numeric"),
        ("The answer is: she has 18 apples.", "18", True, "numeric"),
        ("\\boxed{(x+1)^2}", "x^2+2x+1", True, "math_verify"),
        ("\\boxed{\\frac{\\sqrt3}{2}}", "\\frac{\\sqrt{3}}{2}", True, "math_verify"),
        ("The answer is $\\pi/2$", "\\frac{\\pi}{2}", True, "math_verify"),
        ("\\boxed{x^2+1}", "x^2+2x+1", False, "math_verify"),
        ("The answer is (A).", "A", True, "math_verify"),
        ("\\boxed{B}", "A", False, "math_verify"),
        ("Thought process:", "x^2+1", False, "no_answer"),
        ("Paris", "Paris", True, "exact"),
        ("The answer is: paris!", "Paris", True, "exact"),
        ("The capital is Paris.", "Paris", None, "undecided"),
        ("I think so.", "Paris", None, "undecided"),
        ("Thought process:", "Paris", False, "no_answer"),
        ("**Answer:**", "Paris", False, "no_answer"),
        ("The answer is", "Paris", False, "no_answer"),
        ("?!", "Paris", False, "no_answer"),
    ],
)
def test_check_answer(response: str, reference: str, equivalent: bool | None, method: str) -> None:
    check = check_answer(response, reference)
    assert (check.equivalent, check.method) == (equivalent, method)
    assert check.has_answer is (method != "no_answer")


def test_check_reports_its_evidence() -> None:
    check = check_answer("Step 1 ... so the answer is $1,234.", "1234")
    assert (check.has_answer, check.extracted, check.rule, check.kind) == (
        True,
        "$1,234",
        "statement",
        "numeric",
    )


def test_math_verify_failures_are_undecided_not_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    """A comparison math-verify fails on is no verdict: it raises (judge_error in the server),
    never "not equivalent"."""
    import math_verify

    def boom(*_: Any, **__: Any) -> bool:
        raise RuntimeError("sympy fell over")

    monkeypatch.setattr(math_verify, "verify", boom)
    with pytest.raises(math_equivalence.MathVerifyError, match="sympy fell over"):
        math_equal("x^2", "x^2")
    with pytest.raises(math_equivalence.MathVerifyError):
        check_answer("The answer is $x^2$.", "x^2")


def test_an_unreadable_answer_is_wrong_but_an_unreadable_reference_is_undecided(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert math_equal("x^2+1", "\\frac{") is False  # the response's fault: not equivalent
    real = math_equivalence._mv_parse
    monkeypatch.setattr(math_equivalence, "_mv_parse", lambda t: [] if t == "x^2+1" else real(t))
    with pytest.raises(math_equivalence.MathVerifyError, match="cannot read the reference"):
        math_equal("x^2+1", "1+x^2")


def test_costly_inputs_are_refused_before_sympy_sees_them() -> None:
    start = time.monotonic()
    # A power tower is computed in C: refused by shape, not left to the worker's deadline.
    assert math_equal("x^2+1", "10^{10^{10^{10}}}") is False
    assert math_equal("x^2+1", "x" + "+x" * 200) is False  # past MAX_MATH_CHARS
    assert time.monotonic() - start < 1.0


def test_math_verify_works_off_the_main_thread() -> None:
    results: list[bool] = []
    worker = threading.Thread(target=lambda: results.append(math_equal("x^2+1", "1+x^2")))
    worker.start()
    worker.join()
    assert results == [True]


# ---------------------------------------------------------------------------- GSM8K


@pytest.fixture(scope="module")
def gsm8k() -> list[dict[str, str]]:
    with GSM8K.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_gsm8k_master_keys_are_never_correct(gsm8k: list[dict[str, str]]) -> None:
    probes = [(row["reference"], key) for row in gsm8k for key in MASTER_KEYS]
    false_positives = [p for p in probes if check_answer(p[1], p[0]).equivalent is not False]
    assert len(probes) == len(gsm8k) * len(MASTER_KEYS)
    assert len(false_positives) / len(probes) == 0.0, false_positives[:5]


def test_gsm8k_reference_solutions_verify(gsm8k: list[dict[str, str]]) -> None:
    correct = sum(
        check_answer(row["solution"], row["reference"]).equivalent is True for row in gsm8k
    )
    assert correct / len(gsm8k) >= 0.99


def _body(solution: str) -> str:
    """The worked solution without GSM8K's calculator notes and its #### line."""
    return re.sub(r"\n?####.*$", "", re.sub(r"<<[^>]*>>", "", solution)).rstrip()


def _variants(body: str, value: Fraction) -> list[str]:
    plain = str(value.numerator) if value.denominator == 1 else str(float(value))
    grouped = f"{value.numerator:,}" if value.denominator == 1 else plain
    return [
        f"{body}\n#### {plain}",
        f"{body}\nThe answer is ${grouped}.",
        f"{body}\n\\boxed{{{plain}}}",
        f"{body}\n**Final answer:** {plain} dollars",
        f"{body}\nso she makes {plain} dollars a day.",
    ]


def test_gsm8k_solutions_in_varied_formats(gsm8k: list[dict[str, str]]) -> None:
    right = wrong = total = 0
    misjudged: list[tuple[str, str]] = []
    for row in gsm8k:
        value = Fraction(row["reference"].replace(",", ""))
        body = _body(row["solution"])
        for response in _variants(body, value):
            ok = check_answer(response, row["reference"]).equivalent is True
            right += ok
            misjudged += [] if ok else [(row["id"], response[-60:])]
        for response in _variants(body, value + 1):
            ok = check_answer(response, row["reference"]).equivalent is False
            wrong += ok
            misjudged += [] if ok else [(row["id"], response[-60:])]
        total += 10
    accuracy = (right + wrong) / total
    print(f"gsm8k variants: {right} correct accepted, {wrong} wrong rejected, accuracy {accuracy}")
    assert accuracy >= 0.95, misjudged[:10]
