"""Bounds on a rubric sent inline with a request.

A rubric in the rubrics directory or PUT by the admin is trusted configuration; one inline in a
scoring request is client input, and its size decides what every item costs (a criterion is an
engine call per item, reasoning tokens are generated per call). So it is bounded by settings;
each refusal names the limit and the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from judge_server.judges.rubric import RubricModeSpec
from judge_server.rubrics.spec import RubricSpec
from judge_server.settings import Settings


def definition_problem(data: Mapping[str, Any], settings: Settings) -> str | None:
    """Checked before parsing: a huge definition is refused without validating it."""
    chars = len(json.dumps(data, ensure_ascii=False, default=str))
    limit = settings.max_inline_rubric_chars
    if chars > limit:
        return (
            f"inline rubric is {chars:,} characters as JSON; at most {limit:,} "
            "(JUDGE_MAX_INLINE_RUBRIC_CHARS): register large rubrics on the server instead"
        )
    return None


def spec_problem(rubric: RubricSpec, settings: Settings) -> str | None:
    if isinstance(rubric, RubricModeSpec) and len(rubric.criteria) > settings.max_inline_criteria:
        return (
            f"inline rubric has {len(rubric.criteria)} criteria; at most "
            f"{settings.max_inline_criteria} (JUDGE_MAX_INLINE_CRITERIA)"
        )
    tokens = rubric.reasoning.max_tokens
    if rubric.reasoning.enabled and tokens > settings.max_reasoning_tokens:
        return (
            f"inline rubric asks for reasoning.max_tokens {tokens}; at most "
            f"{settings.max_reasoning_tokens} (JUDGE_MAX_REASONING_TOKENS)"
        )
    return None
