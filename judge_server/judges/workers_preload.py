"""Imported only by the check workers' forkserver (``judges.workers``), never by the server.

It loads the checks and warms math-verify (sympy, the LaTeX parser) once, in the process every
worker forks from, so a new or replaced worker's first check does not spend its deadline on
imports and first-use set-up.
"""

from __future__ import annotations

import logging

from judge_server.judges import checks as _checks  # noqa: F401 (loaded for the forks)
from judge_server.judges.answers import check_answer
from judge_server.judges.answers.filler import filler_words, number_words

# math-verify warns on every call that its own timers are off: the worker's deadline is ours.
logging.getLogger("math_verify").setLevel(logging.ERROR)

for _response, _reference in (("The answer is $x^2+1$.", "1+x^2"), ("#### 18", "18")):
    check_answer(_response, _reference)
# The content-free guard's vocabulary, for the long texts it reads in the workers.
filler_words()
number_words()
