"""Text primitives every answer rule shares: cleaning markup, telling content from framing."""

from __future__ import annotations

import re

NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
"""A decimal number, with or without thousands commas (no sign)."""
LAST_NUMBER = re.compile(rf"(?:(?<![\w)])[-−])?(?:{NUM})(?:/\d+)?")
"""Any number in running text, with a leading minus and a ``/den`` if written."""

_LATEX_CMD = re.compile(r"\\[A-Za-z]+")
_EMPTY_COMMAND = re.compile(r"\\[A-Za-z]+\s*\{\s*\}")
_PLAIN_WORD = re.compile(r"[^\W\d_]{2,}")
_MATH_WORDS = frozenset(
    {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt", "pi", "inf", "oo"}
)
_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ("__", "__"))


def has_content(text: str) -> bool:
    """Answer-bearing content: a letter or digit, outside commands on nothing (``\\boxed{}``)."""
    return re.search(r"[^\W_]", _EMPTY_COMMAND.sub("", text)) is not None


def has_plain_words(text: str) -> bool:
    """Prose rather than a formula: a run of 2+ letters that is neither LaTeX nor a function."""
    words = _PLAIN_WORD.findall(_LATEX_CMD.sub(" ", text))
    return any(w.lower() not in _MATH_WORDS for w in words)


def clean(text: str) -> str:
    """Strip surrounding whitespace, trailing sentence punctuation and wrapping markup."""
    prev = None
    while prev != text:
        prev = text
        text = text.strip().rstrip(".,;!?").strip()
        for left, right in _WRAPPERS:
            if (
                len(text) > len(left) + len(right)
                and text.startswith(left)
                and text.endswith(right)
            ):
                text = text[len(left) : -len(right)]
                break
    return text


def brace_pairs(text: str) -> dict[int, int]:
    """Index of each balanced ``{`` -> index of its ``}`` (one pass, so long inputs stay cheap)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i, char in enumerate(text):
        if char == "{":
            stack.append(i)
        elif char == "}" and stack:
            pairs[stack.pop()] = i
    return pairs
