"""Offline batch files: JSONL items in, JSONL results out (``judge-server score``).

A line is a ``/v1/score`` item. A HealthBench row is one too once its own bookkeeping keys are
read: ``prompt_id`` is the id (unless the row has one), ``example_tags``, ``ideal_completions_data``
and ``canary`` do not affect grading and are dropped; its ``rubrics`` are the item's criteria and
the response to judge is in ``response``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from judge_server.api.protocol import ScoreItemIn
from judge_server.judges import InvalidItemError, JudgeItem
from judge_server.rubrics.spec import RubricSpec
from judge_server.service.scoring import ItemResult


@dataclass(frozen=True)
class ParsedLine:
    line_no: int
    id: str
    item: JudgeItem | None
    error: str | None = None

    def error_result(self) -> ItemResult:
        return ItemResult(self.id, "invalid_input", error=self.error)


def read_items(path: Path) -> list[ParsedLine]:
    """Every non-blank line becomes a ParsedLine; a bad line is kept as an error, in place."""
    parsed: list[ParsedLine] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        default_id = str(len(parsed))
        try:
            item = _score_item(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raw_id = _raw_id(line)
            parsed.append(
                ParsedLine(n, raw_id or default_id, None, f"line {n}: {where}: {first['msg']}")
            )
            continue
        try:
            parsed.append(ParsedLine(n, item.id or default_id, item.to_item(default_id)))
        except InvalidItemError as exc:
            parsed.append(ParsedLine(n, item.id or default_id, None, f"line {n}: {exc}"))
    return parsed


#: HealthBench's keys beside prompt and rubrics, which its grader does not read
HEALTHBENCH_DROPPED = ("example_tags", "ideal_completions_data", "canary")


def _score_item(line: str) -> ScoreItemIn:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and ("prompt_id" in data or "example_tags" in data):
        row = {k: v for k, v in data.items() if k not in HEALTHBENCH_DROPPED and k != "prompt_id"}
        if "prompt_id" in data:
            row.setdefault("id", data["prompt_id"])
        return ScoreItemIn.model_validate(row)
    return ScoreItemIn.model_validate_json(line)


def _raw_id(line: str) -> str | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    value = data.get("id", data.get("prompt_id")) if isinstance(data, dict) else None
    return str(value) if value is not None else None


def result_record(result: ItemResult, rubric: RubricSpec, model: str) -> dict[str, Any]:
    return {
        "id": result.id,
        "status": result.status,
        "reward": result.reward,
        "details": result.details,
        "error": result.error,
        "usage": asdict(result.usage),
        "rubric": {"name": rubric.name, "version": rubric.version},
        "model": model,
    }
