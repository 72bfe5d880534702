"""``judge-server``: the argument parser and the dispatch to each command's module."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

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
            "kv_block_size",
            "engine",
            "remote_urls",
            "remote_model",
            "reward_models",
            "api_keys",
            "trust_network",
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
    p.add_argument(
        "--kv-block-size",
        type=int,
        help="tokens per KV-cache block (default: 32 on CPU, vLLM's 16 on GPU)",
    )
    p.add_argument("--engine", choices=["vllm", "remote"], help="default vllm (in-process)")
    p.add_argument(
        "--remote-url",
        dest="remote_urls",
        action="append",
        help="remote engine: an OpenAI-compatible base URL (repeat for replicas)",
    )
    p.add_argument("--remote-model", help="remote engine: served model name")
    _reward_model_flag(p)


def _reward_model_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reward-model",
        dest="reward_models",
        action="append",
        metavar="NAME=PATH",
        help="a reward model for reward_model (scalar) or process_reward_model (step-tag PRM) "
        "rubrics (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="judge-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP reward server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        help="a key for scoring and reads (repeatable; JUDGE_API_KEYS keeps it out of ps)",
    )
    serve.add_argument(
        "--trust-network",
        action="store_true",
        default=None,
        help="allow a non-loopback --host without API keys",
    )
    _engine_flags(serve)

    score = sub.add_parser("score", help="score a JSONL file offline with the same judges")
    score.add_argument(
        "input",
        type=Path,
        help='JSONL, one item per line: {"id", "prompt", "response", "reference"?, "metadata"?}',
    )
    score.add_argument("-o", "--output", type=Path, required=True, help="JSONL results")
    score.add_argument("--rubric", required=True, help="rubric name or name@version")
    score.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="items per batch (at most JUDGE_MAX_ITEMS_PER_REQUEST)",
    )
    _engine_flags(score)

    bench = sub.add_parser("bench", help="measure throughput and rubric cost on this machine")
    bench.add_argument("--quick", action="store_true", help="small workload (minutes on a CPU)")
    bench.add_argument("--json", type=Path, help="also write the figures as JSON here")
    bench.add_argument("--plot", type=Path, help="also write a PNG bar chart (needs matplotlib)")
    bench.add_argument(
        "--compile", action="store_true", help="let vLLM compile the model (default: eager)"
    )
    bench.add_argument(
        "--section",
        choices=["core", "rm-vs-serve-rm", "routing", "process"],
        default="core",
        help="core: throughput, rubric cost, cache and the naive baseline (default); "
        "rm-vs-serve-rm: reward_model mode against OpenRLHF's serve_rm on one value-head model; "
        "routing: rubric-mode prefix-cache hits on two vllm serve replicas behind vllm-router, "
        "cache_aware against round_robin; process: an 8-step process reward against one "
        "verdict on the same text",
    )
    bench.add_argument(
        "--requests",
        type=int,
        help="rm-vs-serve-rm: timed one-sample requests per server (default 128, --quick 64)",
    )
    _engine_flags(bench)

    ev = sub.add_parser("eval", help="score labelled data with a rubric and print agreement")
    ev.add_argument(
        "--rubric",
        required=True,
        action="append",
        help="rubric name or name@version (repeat to evaluate several)",
    )
    ev.add_argument(
        "--data", type=Path, help="data directory (default: the labelled data shipped with it)"
    )
    ev.add_argument("--limit", type=int, help="rows per source (default: all)")
    ev.add_argument("--json", type=Path, help="also write the table as JSON here")
    _engine_flags(ev)

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
    _reward_model_flag(render)
    rsub.add_parser("schema", help="print the rubric JSON schema")
    _generate_parser(rsub)

    head = sub.add_parser(
        "build-value-head",
        help="build a toy reward model (causal LM + seeded value head) for reward_model mode",
    )
    head.add_argument("out", type=Path, help="folder to write the reward model to")
    head.add_argument("--base", type=Path, help="HF causal LM folder (default: embedded)")
    head.add_argument("--seed", type=int, default=0)
    head.add_argument(
        "--prm",
        action="store_true",
        help="a process reward model instead: a seeded two-label head read at step tags",
    )
    vlm = sub.add_parser(
        "build-tiny-vlm",
        help="build a toy vision-language judge (Idefics3: seeded vision tower, embedded LM)",
    )
    vlm.add_argument("out", type=Path, help="folder to write the model to")
    vlm.add_argument("--base", type=Path, help="HF Llama-family LM folder (default: embedded)")
    vlm.add_argument("--seed", type=int, default=0)
    return parser


def _generate_parser(rsub: Any) -> None:
    gen = rsub.add_parser(
        "generate",
        help="the judge model writes a rubric (one definition) or instance criteria (JSONL)",
    )
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="the task the rubric judges responses to")
    source.add_argument(
        "--request", type=Path, help="a JSON file with the body of POST /v1/rubrics/generate"
    )
    source.add_argument(
        "--input",
        type=Path,
        help="JSONL rows (prompt, reference?, pairs?): writes each with its criteria in "
        "'rubrics' to --output, resumably",
    )
    gen.add_argument("--reference", help="a reference answer")
    gen.add_argument("--pairs", type=Path, help='JSONL of {"chosen", "rejected"} responses')
    gen.add_argument(
        "--base",
        help="rubric-mode rubric for the prompt and aggregation (default instruction_following; "
        "with --input, one that takes instance criteria, default healthbench)",
    )
    gen.add_argument("--name", help="name of the generated definition")
    gen.add_argument("--max-criteria", type=int, help="at most this many criteria (default 8)")
    gen.add_argument(
        "-o", "--output", type=Path, help="definition: .yaml or .json (default stdout); JSONL"
    )
    gen.add_argument(
        "--concurrency", type=int, default=8, help="JSONL: rows generated at once (default 8)"
    )
    _engine_flags(gen)


def _exit_on_sigterm() -> None:
    """A SIGTERM (``timeout``, a CI runner) unwinds like Ctrl-C, so the servers a command started
    are stopped by their ``finally`` blocks instead of being orphaned."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"judge-server: invalid settings: {problems}")
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "bench":
        _exit_on_sigterm()
    if args.command == "serve":
        from judge_server.cli.serve import serve

        serve(settings)
    elif args.command == "bench" and args.section == "rm-vs-serve-rm":
        from judge_server.cli.bench import rm_compare

        sizes = rm_compare.RM_QUICK if args.quick else rm_compare.RmSizes()
        if args.requests is not None:
            sizes = dataclasses.replace(sizes, requests=args.requests)
        asyncio.run(
            rm_compare.run_rm_vs_serve_rm(
                settings, sizes=sizes, json_path=args.json, compile_model=args.compile
            )
        )
    elif args.command == "bench" and args.section == "routing":
        from judge_server.cli.bench import routing_prefix

        routing_sizes = (
            routing_prefix.ROUTING_QUICK if args.quick else routing_prefix.RoutingSizes()
        )
        asyncio.run(
            routing_prefix.run_routing(
                settings, sizes=routing_sizes, json_path=args.json, compile_model=args.compile
            )
        )
    elif args.command == "bench" and args.section == "process":
        from judge_server.cli.bench.process_cost import run_process

        asyncio.run(
            run_process(settings, quick=args.quick, json_path=args.json, compile_model=args.compile)
        )
    elif args.command == "bench":
        from judge_server.cli.bench.run import run

        asyncio.run(
            run(
                settings,
                quick=args.quick,
                json_path=args.json,
                plot_path=args.plot,
                compile_model=args.compile,
            )
        )
    elif args.command == "eval":
        from judge_server.cli.evaluation.command import run_eval

        sys.exit(asyncio.run(run_eval(settings, args.rubric, args.data, args.limit, args.json)))
    elif args.command == "rubrics":
        sys.exit(rubrics_command(args, settings))
    elif args.command == "score":
        from judge_server.cli.score import score_file

        sys.exit(
            asyncio.run(score_file(settings, args.rubric, args.input, args.output, args.batch_size))
        )
    elif args.command == "build-value-head":
        from judge_server.cli.value_head import build_command

        sys.exit(build_command(settings, args.out, args.base, args.seed, process=args.prm))
    elif args.command == "build-tiny-vlm":
        from judge_server.cli import tiny_vlm

        sys.exit(tiny_vlm.build_command(settings, args.out, args.base, args.seed))


def rubrics_command(args: argparse.Namespace, settings: Settings) -> int:
    from judge_server.cli import rubric_tools

    if args.rubrics_command == "validate":
        return rubric_tools.validate(args.path)
    if args.rubrics_command == "schema":
        return rubric_tools.schema()
    if args.rubrics_command == "generate":
        return _generate_command(args, settings)
    return rubric_tools.render(settings, args.name, args.item, with_template=not args.messages)


def _generate_command(args: argparse.Namespace, settings: Settings) -> int:
    from judge_server.cli import rubric_generate

    if args.input is not None:
        if args.output is None:
            sys.exit("judge-server rubrics generate: --input needs --output (JSONL)")
        return asyncio.run(
            rubric_generate.generate_rows(
                settings,
                args.input,
                args.output,
                base=args.base,
                max_criteria=args.max_criteria,
                concurrency=args.concurrency,
            )
        )
    try:
        body = rubric_generate.request_body(args)
    except (OSError, ValueError) as exc:
        sys.exit(f"judge-server rubrics generate: {exc}")
    return asyncio.run(rubric_generate.generate_one(settings, body, args.output))


if __name__ == "__main__":
    main()
