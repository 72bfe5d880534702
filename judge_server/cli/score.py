"""``judge-server score``: a JSONL file of items in, a JSONL file of results out, with the
same judges as the server (through the same service), and a progress bar."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from judge_server.settings import Settings

if TYPE_CHECKING:
    from judge_server.cli.batch_files import ParsedLine


async def score_file(
    settings: Settings, rubric_ref: str, src: Path, dst: Path, batch_size: int
) -> int:
    from tqdm import tqdm

    from judge_server.cli.batch_files import read_items, result_record
    from judge_server.engines.usage import Usage
    from judge_server.service import ServiceError, build_service
    from judge_server.service.cost import engine_calls

    # Offline scoring computes fresh results: no result cache.
    service = build_service(settings, with_cache=False)
    try:
        judge = service.judge(rubric_ref)  # before the slow engine start
        parsed = read_items(src)
    except ServiceError as exc:
        print(f"judge-server score: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"judge-server score: cannot read {src}: {exc}", file=sys.stderr)
        return 2
    rubric = judge.rubric
    # A batch is one request to the service: keep it within the request bounds (items, and
    # engine calls: a rubric with many criteria costs several per item, an item with its own
    # criteria as many as it has).
    max_calls = settings.max_engine_calls_per_request
    parsed = [_within(p, engine_calls(judge, p.item), max_calls) for p in parsed]
    batches = _batches(
        parsed,
        lambda p: max(1, engine_calls(judge, p.item)) if p.item is not None else 0,
        max_items=max(1, min(batch_size, settings.max_items_per_request)),
        max_calls=max_calls,
    )
    counts: dict[str, int] = {}
    usage = Usage()
    try:
        await service.start()
        model = service.model_id(judge)
        with (
            dst.open("w", encoding="utf-8") as out,
            tqdm(total=len(parsed), unit="item", desc=f"scoring with {rubric.ref}") as bar,
        ):
            for chunk in batches:
                good = [p.item for p in chunk if p.item is not None]
                scored = iter(await service.score(judge, good))
                for p in chunk:
                    result = next(scored) if p.item is not None else p.error_result()
                    counts[result.status] = counts.get(result.status, 0) + 1
                    usage.add(result.usage)
                    record = result_record(result, rubric, model)
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                bar.update(len(chunk))
    except ServiceError as exc:
        print(f"judge-server score: {exc}", file=sys.stderr)
        return 2
    finally:
        await service.close()
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"wrote {len(parsed)} results to {dst} ({summary})", file=sys.stderr)
    print(
        f"engine usage: {usage.engine_calls} calls, {usage.prompt_tokens} prompt tokens "
        f"({usage.cached_prompt_tokens} prefix-cached)",
        file=sys.stderr,
    )
    return 0


def _within(line: ParsedLine, calls: int, max_calls: int) -> ParsedLine:
    """The line, or, when it alone needs more engine calls than one request may make, that
    line's ``invalid_input``: the service would refuse its batch whole and end the run."""
    if line.item is None or calls <= max_calls:
        return line
    why = (
        f"line {line.line_no}: needs {calls} engine calls; at most {max_calls} per request "
        "(JUDGE_MAX_ENGINE_CALLS_PER_REQUEST)"
    )
    return replace(line, item=None, error=why)


def _batches(
    parsed: list[ParsedLine],
    cost: Callable[[ParsedLine], int],
    *,
    max_items: int,
    max_calls: int,
) -> list[list[ParsedLine]]:
    """Consecutive lines in batches of at most ``max_items`` lines and ``max_calls`` engine
    calls (a line alone over the bound is already its ``invalid_input``: ``_within``)."""
    batches: list[list[ParsedLine]] = []
    batch: list[ParsedLine] = []
    calls = 0
    for line in parsed:
        need = cost(line)
        if batch and (len(batch) >= max_items or calls + need > max_calls):
            batches.append(batch)
            batch, calls = [], 0
        batch.append(line)
        calls += need
    if batch:
        batches.append(batch)
    return batches
