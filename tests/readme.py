"""The README's examples as data, so tests can keep them true: every ``curl`` request (with the
JSON response shown right after it, if any) and every YAML rubric."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"

_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_CURL = re.compile(
    r"curl -s '?localhost:8000(?P<path>/[^\s']+)'?.*?-d '(?P<body>.*?)'", re.DOTALL
)
_ELLIPSIS_LINE = re.compile(r'^(\s*)\.\.\.(?=[\]}]*,?\s*$)', re.MULTILINE)
_BARE_ELLIPSIS = re.compile(r'(?<=[,\[{]) *\.\.\.(?=\s*[\]}])')
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


@dataclass(frozen=True)
class Example:
    line: int
    path: str
    body: dict[str, Any]
    response: dict[str, Any] | None
    """The documented response; ``"..."`` stands for anything."""


def _blocks(text: str) -> list[tuple[int, str, str]]:
    """(line, language, dedented content) of every fenced block."""
    return [
        (text[: m.start()].count("\n") + 1, m.group(2), textwrap.dedent(m.group(3)))
        for m in _FENCE.finditer(text)
    ]


def _loose_json(text: str) -> dict[str, Any]:
    """JSON in which ``...`` elides list items or lines, as documentation writes it."""
    text = _ELLIPSIS_LINE.sub(r"\1", text)
    text = _BARE_ELLIPSIS.sub("", text)
    value = json.loads(_TRAILING_COMMA.sub(r"\1", text))
    assert isinstance(value, dict)
    return value


def curl_examples() -> list[Example]:
    blocks = _blocks(README.read_text(encoding="utf-8"))
    examples = []
    for k, (line, lang, content) in enumerate(blocks):
        match = _CURL.search(content) if lang == "bash" else None
        if match is None:
            continue
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        response = None
        if following is not None and following[1] == "json" and following[0] <= line + len(
            content.splitlines()
        ) + 3:
            response = _loose_json(following[2])
        examples.append(Example(line, match["path"], json.loads(match["body"]), response))
    return examples


def yaml_rubrics() -> list[tuple[int, str]]:
    """(line, text) of every YAML block that defines a rubric (it has a ``mode``)."""
    return [
        (line, content)
        for line, lang, content in _blocks(README.read_text(encoding="utf-8"))
        if lang == "yaml" and re.search(r"^mode:", content, re.MULTILINE)
    ]


def matches(documented: Any, actual: Any, where: str = "") -> list[str]:
    """Where ``actual`` differs from what the README documents: the same keys, and the same
    strings, integers and nulls; ``"..."`` (as a value or a key) matches anything, a documented
    list may be a prefix, and floats and booleans are the model's (only their type is checked)."""
    if documented == "...":
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where or 'response'}: documented an object, got {actual!r}"]
        problems = [
            f"{where}.{k}: documented but absent"
            for k in documented
            if k not in actual and k != "..."
        ]
        for key in documented.keys() & actual.keys():
            problems += matches(documented[key], actual[key], f"{where}.{key}")
        return problems
    if isinstance(documented, list):
        if not isinstance(actual, list) or len(actual) < len(documented):
            return [f"{where}: documented {len(documented)} entries, got {actual!r}"]
        return [
            p
            for i, (d, a) in enumerate(zip(documented, actual, strict=False))
            for p in matches(d, a, f"{where}[{i}]")
        ]
    if isinstance(documented, bool):
        return [] if isinstance(actual, bool) else [f"{where}: not a boolean: {actual!r}"]
    if documented is None or isinstance(documented, str | int):
        return [] if documented == actual else [f"{where}: README {documented!r}, got {actual!r}"]
    if isinstance(documented, float):
        return [] if isinstance(actual, int | float) else [f"{where}: not a number: {actual!r}"]
    return [f"{where}: cannot compare {documented!r}"]
