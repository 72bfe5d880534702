"""Regular expressions in rubrics (composite ``regex_must`` / ``regex_must_not`` checks) are RE2.

A rubric can arrive inline with any request, so its pattern is hostile input. Python's ``re``
backtracks: ``^(a+)+$`` on 25 characters ran for seconds and froze the server. RE2
(``google-re2``) matches in time linear in the text, with no exception: it has no backreferences
or lookaround, the constructs that need backtracking, and refuses them when the rubric is
loaded, with the reason. (The ``regex`` module's ``timeout=`` would still let every hostile
pattern burn its whole time limit on every item.) Linear is not free on a long response with a
large pattern, so the checks still run in a worker with a deadline (``judges.workers``).

RE2 syntax is Python's for everything else (``(?P<name>...)``, ``(?i)``, classes), except:
``\\w``, ``\\d``, ``\\b`` are ASCII (use ``\\pL``, ``\\pN`` for any script), ``\\Z`` is ``\\z``, and
``$`` matches only at the very end: ``search`` also tries the text without one final newline, as
Python's ``$`` matches before it (model responses often end in one).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled RE2 pattern; ``ValueError`` saying why when RE2 refuses it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"invalid regex {pattern!r}: {reason} (patterns are RE2 syntax: no backreferences "
            "or lookaround, repetition counts up to 1000)"
        ) from None


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches anywhere in ``text`` (like ``re.search``, whose ``$`` also
    matches before a final newline)."""
    compiled = compile_pattern(pattern)
    if compiled.search(text) is not None:
        return True
    return text.endswith("\n") and compiled.search(text[:-1]) is not None
