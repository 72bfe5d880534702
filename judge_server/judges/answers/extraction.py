"""Final-answer extraction: the answer a response states, by the strongest rule that finds one."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from judge_server.judges.answers.numbers import parse_number
from judge_server.judges.answers.text import (
    LAST_NUMBER,
    brace_pairs,
    clean,
    has_content,
    has_plain_words,
)

Rule = Literal["boxed", "gsm8k", "statement", "equals", "bold", "bare", "last_number"]


@dataclass(frozen=True)
class Extracted:
    text: str
    """The answer as the response states it, with wrapping markup ($..$, **..**) removed."""
    rule: Rule
    """Which extraction rule found it: the judge's evidence."""


_GSM8K = re.compile(r"^[ \t]*####[ \t]*(.*)$", re.MULTILINE)
_STATEMENT = re.compile(
    r"\banswer\b(?:[ \t]+(?:to|for|of)\b[^.:\n=]{0,60}?)?[ \t]*"
    r"(?:(?:is|was|would[ \t]+be|will[ \t]+be|should[ \t]+be)\b|:|=)[ \t]*:?",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_SENTENCE_END = re.compile(r"(?<=\S)[.!?](?=\s|$)")


def _last_boxed(response: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``) with balanced braces and content."""
    opens = [m.end() - 1 for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", response)]
    if not opens:
        return None
    pairs = brace_pairs(response)
    for brace in reversed(opens):
        if brace in pairs:
            content = clean(response[brace + 1 : pairs[brace]])
            if has_content(content):
                return content
    return None


def _statement(response: str) -> str | None:
    """The last "the answer is X" / "final answer: X" whose X has content (same or next line)."""
    text = response.replace("**", "").replace("__", "")
    for match in reversed(list(_STATEMENT.finditer(text))):
        rest = text[match.end() :].lstrip()
        line, _, after = rest.partition("\n")
        if re.search(r"\d", after):
            return None  # the text computes on past it: not the final answer, nor any earlier one
        end = _SENTENCE_END.search(line)
        content = clean(line[: end.start()] if end else line)
        if has_content(content):
            return content
    return None


def _last_line(response: str) -> str:
    lines = [line for line in response.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _equals_at_end(response: str) -> str | None:
    """``= X`` ending the last line, where X is a number (units allowed) or a formula."""
    line = _last_line(response)
    if "=" not in line:
        return None
    content = clean(line.rsplit("=", 1)[1])
    if not has_content(content) or len(content) > 40:
        return None
    return content if parse_number(content) is not None or not has_plain_words(content) else None


def _bold_at_end(response: str) -> str | None:
    bolds = [clean(a or b) for a, b in _BOLD.findall(_last_line(response))]
    bolds = [b for b in bolds if has_content(b) and not b.endswith(":")]
    return bolds[-1] if bolds else None


def _bare(response: str) -> str | None:
    """The whole response is one short formula or choice ("x+1", "\\frac{1}{2}", "(B)")."""
    text = clean(response)
    if "\n" in text or len(text) > 60 or has_plain_words(text) or not has_content(text):
        return None
    return text


def _last_number(response: str) -> str | None:
    numbers = LAST_NUMBER.findall(response)
    return numbers[-1] if numbers else None


_RULES: tuple[tuple[Rule, Callable[[str], str | None]], ...] = (
    ("boxed", _last_boxed),
    ("gsm8k", lambda r: next((c for c in reversed(_GSM8K.findall(r)) if has_content(c)), None)),
    ("statement", _statement),
    ("equals", _equals_at_end),
    ("bold", _bold_at_end),
    ("bare", _bare),
    ("last_number", _last_number),
)


def extract_final_answer(response: str) -> Extracted | None:
    """The response's final answer by the strongest rule that finds one; None if it has none.

    Rules, strongest first: last ``\\boxed{}``; GSM8K ``#### X``; an explicit statement ("the
    answer is X", "final answer: X"); ``= X`` ending the last line; ``**X**`` in the last line;
    the whole response being one short formula; the last number anywhere. Every rule requires
    content (a letter or digit), so a response made only of framing or punctuation has no answer.
    """
    for rule, find in _RULES:
        found = find(response)
        if found is not None:
            text = clean(found)
            if has_content(text):
                return Extracted(text=text, rule=rule)
    return None
