"""``judge-server eval``: one engine, one or more rubrics, a table per rubric."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judge_server.settings import Settings


async def run_eval(
    settings: Settings,
    rubric_refs: Sequence[str],
    data_dir: Path | None,
    limit: int | None,
    json_path: Path | None,
) -> int:
    from judge_server.engines.factory import build_engine
    from judge_server.evaluation.data import default_data_dir
    from judge_server.evaluation.run import as_json, evaluate, print_table
    from judge_server.judges import Judge, JudgeFailure, judge_for
    from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry

    data_dir = data_dir or default_data_dir()
    if not data_dir.is_dir():
        print(f"judge-server eval: no data directory {data_dir} (pass --data)", file=sys.stderr)
        return 2
    registry = RubricRegistry()
    registry.load_dir(settings.rubrics_dir)
    judges: list[Judge] = []
    try:
        judges = [judge_for(registry.resolve(ref), registry.resolve) for ref in rubric_refs]
    except (RubricNotFoundError, JudgeFailure) as exc:  # fail before the slow engine start
        print(f"judge-server eval: {exc}", file=sys.stderr)
        return 2
    engine = build_engine(settings)
    await engine.start()
    report: dict[str, Any] = {"model": engine.model_id, "rubrics": {}}
    try:
        for judge in judges:
            rows = await evaluate(engine, judge, data_dir, limit)
            print_table(judge.rubric.ref, engine.model_id, rows)
            report["rubrics"][judge.rubric.ref] = as_json(rows)
    finally:
        await engine.shutdown()
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    return 0
