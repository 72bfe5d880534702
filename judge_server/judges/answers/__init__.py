"""Deterministic answer checking against a reference: is there an answer, and does it match.

The guard against content-free "master key" responses (":", "Thought process:", "Solution") is
structural, not a list of strings: a response is judged only on the final answer it states. When
no extraction rule finds answer-bearing content (a number, an expression, or a stated answer),
the response has no answer, and a response with no answer is never equivalent to a reference.

Numeric and mathematical references are decided here (exact number parsing, then math-verify);
free-form text references are left undecided (``equivalent is None``) for the LLM verdict, unless
a normalised exact match settles them.

Modules: ``extraction`` (the final answer a response states), ``numbers`` (exact number
parsing), ``math_equivalence`` (math-verify), ``check`` (the verdict), and ``text`` (markup and
content primitives they share). All of it is plain, synchronous CPU work with no time bound of
its own: the server runs ``check_answer`` in a worker process with a deadline
(``judges.workers``), and a check that fails or runs past it is a judge failure, never a verdict.
"""

from judge_server.judges.answers.check import (
    AnswerCheck,
    Kind,
    Method,
    check_answer,
    reference_kind,
    text_has_answer,
)
from judge_server.judges.answers.extraction import Extracted, Rule, extract_final_answer
from judge_server.judges.answers.math_equivalence import math_equal
from judge_server.judges.answers.numbers import numbers_equal, parse_number

__all__ = [
    "AnswerCheck",
    "Extracted",
    "Kind",
    "Method",
    "Rule",
    "check_answer",
    "extract_final_answer",
    "math_equal",
    "numbers_equal",
    "parse_number",
    "reference_kind",
    "text_has_answer",
]
