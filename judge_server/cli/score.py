"""``judge-server score``: a JSONL file of items in, a JSONL file of results out, with the
same judges as the server (through the same service), and a progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from judge_server.settings import Settings


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
    # engine calls: a rubric with many criteria costs several per item).
    per_item = max(1, engine_calls(judge))
    batch_size = max(
        1,
        min(
            batch_size,
            settings.max_items_per_request,
            settings.max_engine_calls_per_request // per_item,
        ),
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
            for start in range(0, len(parsed), batch_size):
                chunk = parsed[start : start + batch_size]
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
