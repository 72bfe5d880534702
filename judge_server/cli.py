"""Command line: ``judge-server serve`` and ``judge-server score``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from judge_server.settings import Settings

log = logging.getLogger("judge_server")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        key: value
        for key in (
            "host",
            "port",
            "model",
            "rubrics_dir",
            "dtype",
            "max_model_len",
            "kv_cache_gib",
        )
        if (value := getattr(args, key, None)) is not None
    }
    return Settings(**overrides)


def _engine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="Hugging Face folder or id (default: embedded SmolLM2-135M)")
    p.add_argument("--rubrics-dir", type=Path, help="directory of rubric YAML files")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--max-model-len", type=int, help="context length (default 2048)")
    p.add_argument("--kv-cache-gib", type=float, help="KV cache size in GiB (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="judge-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP reward server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    _engine_flags(serve)

    score = sub.add_parser("score", help="score a JSONL file offline with the same judges")
    score.add_argument(
        "input",
        type=Path,
        help='JSONL, one item per line: {"id", "prompt", "response", "reference"?, "metadata"?}',
    )
    score.add_argument("-o", "--output", type=Path, required=True, help="JSONL results")
    score.add_argument("--rubric", required=True, help="rubric name or name@version")
    score.add_argument("--batch-size", type=int, default=64, help="items per engine batch")
    _engine_flags(score)

    bench = sub.add_parser("bench", help="measure throughput and rubric cost on this machine")
    bench.add_argument("--quick", action="store_true", help="small workload (minutes on a CPU)")
    bench.add_argument("--json", type=Path, help="also write the figures as JSON here")
    _engine_flags(bench)

    rubrics = sub.add_parser("rubrics", help="tools for rubric authors")
    rsub = rubrics.add_subparsers(dest="rubrics_command", required=True)
    validate = rsub.add_parser("validate", help="validate rubric files (a file or a directory)")
    validate.add_argument("path", type=Path)
    render = rsub.add_parser("render", help="print the exact prompts the judge sees for an item")
    render.add_argument("name", help="rubric name or name@version")
    render.add_argument("--item", type=Path, required=True, help="JSON file with one item")
    render.add_argument("--rubrics-dir", type=Path, help="directory of rubric YAML files")
    render.add_argument("--model", help="model whose chat template renders the prompts")
    render.add_argument("--messages", action="store_true", help="print chat messages only")
    rsub.add_parser("schema", help="print the rubric JSON schema")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "serve":
        serve(settings)
    elif args.command == "bench":
        from judge_server.bench.run import run

        asyncio.run(run(settings, quick=args.quick, json_path=args.json))
    elif args.command == "rubrics":
        sys.exit(rubrics_command(args, settings))
    elif args.command == "score":
        sys.exit(
            asyncio.run(score_file(settings, args.rubric, args.input, args.output, args.batch_size))
        )


def serve(settings: Settings) -> None:
    import uvicorn

    from judge_server.api import create_app
    from judge_server.engines.vllm_engine import VllmEngine

    server: uvicorn.Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(settings, VllmEngine(settings), on_fatal=stop)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level
    )
    server = uvicorn.Server(config)
    server.run()
    if app.state.judge.engine_error:
        sys.exit(f"judge-server: {app.state.judge.engine_error}")


def rubrics_command(args: argparse.Namespace, settings: Settings) -> int:
    from judge_server.rubrics import authoring

    if args.rubrics_command == "validate":
        return authoring.validate(args.path)
    if args.rubrics_command == "schema":
        return authoring.schema()
    return authoring.render(settings, args.name, args.item, with_template=not args.messages)


async def score_file(
    settings: Settings, rubric_ref: str, src: Path, dst: Path, batch_size: int
) -> int:
    from tqdm import tqdm

    from judge_server.batch import read_items, result_record
    from judge_server.engines.vllm_engine import VllmEngine
    from judge_server.judges import judge_for
    from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry
    from judge_server.scoring import Scorer

    registry = RubricRegistry()
    report = registry.load_dir(settings.rubrics_dir)
    for path, why in report.errors.items():
        log.error("rubric file refused: %s: %s", path, why)
    try:
        rubric = registry.resolve(rubric_ref)
    except RubricNotFoundError as exc:
        print(f"judge-server score: {exc}", file=sys.stderr)
        return 2
    try:
        parsed = read_items(src)
    except OSError as exc:
        print(f"judge-server score: cannot read {src}: {exc}", file=sys.stderr)
        return 2
    engine = VllmEngine(settings)
    await engine.start()
    scorer = Scorer(engine)  # offline scoring computes fresh results; no cache
    judge = judge_for(rubric, registry.resolve)
    counts: dict[str, int] = {}
    try:
        with (
            dst.open("w", encoding="utf-8") as out,
            tqdm(total=len(parsed), unit="item", desc=f"scoring with {rubric.ref}") as bar,
        ):
            for start in range(0, len(parsed), batch_size):
                chunk = parsed[start : start + batch_size]
                good = [p.item for p in chunk if p.item is not None]
                scored = iter(await scorer.score(judge, good, timeout_s=settings.default_timeout_s))
                for p in chunk:
                    result = next(scored) if p.item is not None else p.error_result()
                    counts[result.status] = counts.get(result.status, 0) + 1
                    record = result_record(result, rubric, engine.model_id)
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                bar.update(len(chunk))
    finally:
        await engine.shutdown()
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"wrote {len(parsed)} results to {dst} ({summary})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    main()
