"""``judge-server rubrics generate``: the judge model writes rubrics, offline, through the same
service as ``POST /v1/rubrics/generate``.

Two shapes:

- one request (``--prompt``/``--reference``/``--pairs``, or ``--request`` with the API's JSON
  body) -> one rubric-mode definition, as YAML (or JSON for a ``.json`` output), ready for
  ``PUT /v1/rubrics/{name}`` or the rubrics directory;
- ``--input`` JSONL -> JSONL: each row gets instance criteria in its ``rubrics`` field (the
  project's criterion format), everything else in the row kept; they are judged with the base
  (default ``healthbench``: a base must take instance criteria). Resumable: rows whose id is
  already in the output are skipped, so an interrupted run continues where it stopped. A row
  whose generation fails is reported and not written, so a rerun retries it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from judge_server.settings import Settings

#: the row keys a generation reads (``GenerateRequest`` fields); the rest of a row is kept as is
ROW_FIELDS = ("prompt", "reference", "pairs")


@dataclass(frozen=True)
class Row:
    id: str
    data: dict[str, Any]


def row_id(data: dict[str, Any], position: int) -> str:
    """A row's id: ``id``, else HealthBench's ``prompt_id``, else its position."""
    for key in ("id", "prompt_id"):
        if data.get(key) is not None:
            return str(data[key])
    return str(position)


def read_rows(path: Path) -> list[Row]:
    rows: list[Row] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}:{n}: a row must be a JSON object")
        rows.append(Row(row_id(data, len(rows)), data))
    return rows


def done_ids(path: Path) -> set[str]:
    """Ids already in the output. A line cut short by an interrupted run is dropped (the file
    is rewritten without it), and a last line without its newline gets one, so appending
    continues on a clean line."""
    if not path.exists():
        return set()
    kept: list[str] = []
    ids: set[str] = set()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for line in lines:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("rubrics"), list):
            ids.add(row_id(data, -1))  # every written row names its id
            kept.append(line)
    if len(kept) != len(lines) or (text and not text.endswith("\n")):
        path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return ids


def written(row: Row, criteria: list[dict[str, Any]]) -> dict[str, Any]:
    """The output row: the input row with its criteria, and its id where it had none."""
    named = any(row.data.get(key) is not None for key in ("id", "prompt_id"))
    return {**row.data, **({} if named else {"id": row.id}), "rubrics": criteria}


def _request(data: dict[str, Any], defaults: dict[str, Any]) -> Any:
    from judge_server.api.generate_protocol import GenerateRequest

    # A null field is a field left out: Arrow / `datasets` write every key of every row.
    fields = {k: data[k] for k in ROW_FIELDS if data.get(k) is not None}
    return GenerateRequest.model_validate({**defaults, **fields, "output": "criteria"})


async def generate_rows(
    settings: Settings,
    src: Path,
    dst: Path,
    *,
    base: str | None,
    max_criteria: int | None,
    concurrency: int,
) -> int:
    from tqdm import tqdm

    from judge_server.service import ServiceError, build_service
    from judge_server.service.rubric_generation import base_rubric, generate_rubric

    try:
        rows = read_rows(src)
    except (OSError, ValueError) as exc:
        print(f"judge-server rubrics generate: {exc}", file=sys.stderr)
        return 2
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        print(
            "judge-server rubrics generate: row ids repeat; resuming needs unique ids "
            "(id or prompt_id)",
            file=sys.stderr,
        )
        return 2
    done = done_ids(dst)
    todo = [r for r in rows if r.id not in done]
    defaults: dict[str, Any] = {"base": base}
    if max_criteria is not None:
        defaults["max_criteria"] = max_criteria
    service = build_service(settings, with_cache=False)
    failed = 0
    try:
        base_spec = base_rubric(service, base, "criteria")  # before the slow engine start
        if todo:
            await service.start()
        with (
            dst.open("a", encoding="utf-8") as out,
            tqdm(
                total=len(rows),
                initial=len(rows) - len(todo),
                unit="row",
                desc=f"generating on {base_spec.ref}",
            ) as bar,
        ):
            for start in range(0, len(todo), max(1, concurrency)):
                chunk = todo[start : start + max(1, concurrency)]
                made = await asyncio.gather(
                    *(_one(service, generate_rubric, row, defaults) for row in chunk)
                )
                for row, (criteria, error) in zip(chunk, made, strict=True):
                    if error is not None:
                        failed += 1
                        bar.write(f"row {row.id}: {error}", file=sys.stderr)
                        continue
                    assert criteria is not None
                    out.write(json.dumps(written(row, criteria), ensure_ascii=False) + "\n")
                out.flush()
                bar.update(len(chunk))
    except ServiceError as exc:
        print(f"judge-server rubrics generate: {exc}", file=sys.stderr)
        return 2
    finally:
        await service.close()
    print(
        f"wrote {len(todo) - failed} rows to {dst} ({len(rows) - len(todo)} already there, "
        f"{failed} failed: rerun to retry them); model {service.engine.model_id}, "
        f"judge them with rubric {base_spec.ref}",
        file=sys.stderr,
    )
    return 1 if failed else 0


async def _one(
    service: Any, generate: Any, row: Row, defaults: dict[str, Any]
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(criteria, None) or (None, why): one row's failure is the row's, never the run's."""
    from judge_server.rubrics.instance import criteria_wire
    from judge_server.service import ServiceError

    try:
        request = _request(row.data, defaults)
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, f"{'.'.join(map(str, first['loc'])) or 'row'}: {first['msg']}"
    try:
        made = await generate(
            service,
            request.to_source(),
            base=request.base,
            output="criteria",
            timeout_s=request.timeout_s,
        )
    except ServiceError as exc:
        return None, f"{exc.type}: {exc.message}"
    assert made.instance is not None  # output="criteria" reads them back as scoring will
    return criteria_wire(made.instance), None


async def generate_one(settings: Settings, body: dict[str, Any], dst: Path | None) -> int:
    from judge_server.api.generate_protocol import GenerateRequest
    from judge_server.rubrics.instance import criteria_wire
    from judge_server.rubrics.registry import rubric_yaml
    from judge_server.service import ServiceError, build_service
    from judge_server.service.rubric_generation import base_rubric

    try:
        request = GenerateRequest.model_validate(body)
    except ValidationError as exc:
        print(f"judge-server rubrics generate: {_problems(exc.errors())}", file=sys.stderr)
        return 2
    service = build_service(settings, with_cache=False)
    try:
        base_rubric(service, request.base, request.output)  # before the slow engine start
        await service.start()
        made = await request.generate(service)
    except ServiceError as exc:
        print(f"judge-server rubrics generate: {exc.type}: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await service.close()
    rubric = made.definition
    if made.instance is not None:  # output=criteria: an item's rubrics field, as JSON
        text = json.dumps(criteria_wire(made.instance), indent=2, ensure_ascii=False) + "\n"
        said = (
            f"{len(made.instance)} instance criteria written by {made.model}; put them in an "
            f"item's rubrics field and judge it with rubric {made.base.ref}"
        )
    elif dst is not None and dst.suffix == ".json":
        text = json.dumps(rubric.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    else:
        text = rubric_yaml(rubric)
    if made.instance is None:
        said = (
            f"{rubric.ref}: {len(made.criteria)} criteria written by {made.model} on "
            f"{made.base.ref}; save it with PUT /v1/rubrics/{rubric.name} (admin token)"
        )
    if dst is None:
        sys.stdout.write(text)
    else:
        dst.write_text(text, encoding="utf-8")
    print(said, file=sys.stderr)
    return 0


def _problems(errors: Sequence[Any]) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in errors)


def request_body(args: Any) -> dict[str, Any]:
    """The API body the flags describe (``--request`` is that body, as a file)."""
    body: dict[str, Any] = {}
    if args.request is not None:
        loaded = json.loads(args.request.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.request}: the request must be a JSON object")
        body.update(loaded)
    if args.pairs is not None:
        body["pairs"] = [
            json.loads(line)
            for line in args.pairs.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    for key in ("prompt", "reference", "base", "name", "max_criteria"):
        if (value := getattr(args, key)) is not None:
            body[key] = value
    return body
