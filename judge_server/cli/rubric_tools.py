"""``judge-server rubrics ...``: validate files, print the schema, render the judge's prompts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import ValidationError

from judge_server.judges.composite import CompositeSpec
from judge_server.judges.modes import parse_rubric, rubric_schema
from judge_server.judges.rubric import RubricModeSpec
from judge_server.rubrics.registry import RUBRIC_SUFFIXES, read_rubric_file
from judge_server.rubrics.spec import RubricError
from judge_server.settings import Settings


def validate(path: Path) -> int:
    """Validate one file or every rubric file of a directory; exit status 1 on any error."""
    files = (
        sorted(p for p in path.iterdir() if p.suffix in RUBRIC_SUFFIXES)
        if path.is_dir()
        else [path]
    )
    if not files:
        print(f"no rubric files in {path}", file=sys.stderr)
        return 1
    failures = 0
    for file in files:
        try:
            rubric = read_rubric_file(file, parse_rubric)
        except RubricError as exc:
            failures += 1
            print(f"FAIL {exc}")
            continue
        extra = ""
        if isinstance(rubric, RubricModeSpec):
            extra = f", {len(rubric.criteria)} criteria"
        elif isinstance(rubric, CompositeSpec):
            extra = f", {len(rubric.components)} components"
        print(f"ok   {file.name}: {rubric.ref} ({rubric.mode}{extra})")
    print(f"{len(files) - failures}/{len(files)} valid")
    return 1 if failures else 0


def schema() -> int:
    print(json.dumps(rubric_schema(), indent=2))
    return 0


def render(settings: Settings, ref: str, item_path: Path, *, with_template: bool) -> int:
    from judge_server.api.protocol import ScoreItemIn
    from judge_server.judges import InvalidItemError
    from judge_server.judges.process_reward_model import ProcessRewardModelJudge
    from judge_server.judges.reward_model import RewardModelJudge
    from judge_server.service import ServiceError, build_service

    service = build_service(settings, with_cache=False)
    try:
        judge = service.judge(ref)
        item = ScoreItemIn.model_validate_json(item_path.read_text(encoding="utf-8"))
    except (ServiceError, OSError, ValidationError) as exc:
        print(f"judge-server rubrics render: {exc}", file=sys.stderr)
        return 2
    rubric = judge.rubric
    try:
        parsed = item.to_item("0")
        judge.check_criteria(parsed)  # as scoring: criteria the rubric refuses, or lacks
        calls = judge.preview(parsed)
    except InvalidItemError as exc:
        print(f"judge-server rubrics render: the item does not fit {ref}: {exc}", file=sys.stderr)
        return 2
    # A reward model renders the finished conversation with its own chat template.
    scores_itself = isinstance(judge, RewardModelJudge | ProcessRewardModelJudge)
    tokenizer = None
    if with_template:
        from transformers import AutoTokenizer

        from judge_server.engines.model_store import resolve_model

        if isinstance(judge, RewardModelJudge):
            path = settings.reward_models[judge.rubric.reward_model.model]
        elif isinstance(judge, ProcessRewardModelJudge):
            path = settings.reward_models[judge.config.model]
        else:
            path, _ = resolve_model(settings.model, settings.cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(path)
    print(f"# {rubric.ref} ({rubric.mode}): {len(calls)} judge call(s)")
    for i, messages in enumerate(calls, start=1):
        print(f"\n===== call {i}/{len(calls)} =====")
        if tokenizer is None:
            print(json.dumps(messages, indent=2, ensure_ascii=False))
        else:
            print(
                tokenizer.apply_chat_template(
                    [{"role": m["role"], "content": m["content"]} for m in messages],
                    tokenize=False,
                    add_generation_prompt=not scores_itself,
                )
            )
    if rubric.reasoning.enabled:
        print("\n(reasoning-first: each call generates reasoning, then asks for the verdict)")
    return 0
