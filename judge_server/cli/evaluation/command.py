"""``judge-server eval``: one service, one or more rubrics, a table per rubric."""

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
    from judge_server.cli.evaluation.data import default_data_dir
    from judge_server.cli.evaluation.guard_report import kind_table, print_kinds
    from judge_server.cli.evaluation.run import (
        as_json,
        evaluate,
        false_positive_table,
        print_false_positives,
        print_table,
    )
    from judge_server.service import ServiceError, build_service

    data_dir = data_dir or default_data_dir()
    if not data_dir.is_dir():
        print(f"judge-server eval: no data directory {data_dir} (pass --data)", file=sys.stderr)
        return 2
    # Evaluation measures the judge, not the cache: fresh results only.
    service = build_service(settings, with_cache=False)
    try:  # fail before the slow engine start
        judges = [service.judge(ref) for ref in rubric_refs]
    except ServiceError as exc:
        print(f"judge-server eval: {exc}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"model": service.engine.model_id, "rubrics": {}}
    modes: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    try:
        await service.start()
        report["model"] = service.engine.model_id
        for judge in judges:
            rows = await evaluate(service, judge, data_dir, limit)
            print_table(judge.rubric.ref, service.model_id(judge), rows)
            report["rubrics"][judge.rubric.ref] = as_json(rows)
            modes[judge.rubric.ref] = (judge.rubric.mode, report["rubrics"][judge.rubric.ref])
    except ServiceError as exc:
        print(f"judge-server eval: {exc}", file=sys.stderr)
        return 2
    finally:
        await service.close()
    report["false_positives"] = false_positive_table(modes)
    print_false_positives(report["false_positives"])
    report["per_kind"] = kind_table(modes)
    print_kinds(report["per_kind"])
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    return 0
