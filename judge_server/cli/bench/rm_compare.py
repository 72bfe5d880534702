"""``judge-server bench --section rm-vs-serve-rm``: judge-server's scalar reward-model path against
OpenRLHF's ``serve_rm`` on the same value-head model.

One server at a time, each fed the same samples by ``clients`` concurrent clients that send one
sample per request (as OpenRLHF's trainer does): first ``judge-server serve --reward-model``
with a ``reward_model`` rubric (vLLM), then ``serve_rm`` (``bench/serve_rm.py``: transformers,
one forward per request). The model is ``--reward-model``'s first path if one is given, else a
value head built from the embedded model (``judge-server build-value-head``, seed 0).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import yaml

from judge_server.cli.bench import rm_report
from judge_server.cli.bench.report import write_json
from judge_server.cli.bench.rm_load import (
    LoadResult,
    Sample,
    Send,
    client,
    get_reward_sender,
    judge_server_senders,
    one_sample_clients,
)
from judge_server.cli.bench.run import Progress
from judge_server.cli.bench.servers import Server, free_port, judge_env, judge_server_cmd, serving
from judge_server.cli.bench.workload import short_items
from judge_server.judges import JudgeItem
from judge_server.settings import Settings

RM_NAME = "bench-rm"
"""The reward model's name on judge-server, and its rubric's."""
# Item numbers: the warm-up and the timed samples share nothing (see sections.py's ranges), and
# each judge-server route gets samples of its own (no result- or prefix-cache hit from the
# route before); serve_rm, which caches nothing, gets the first route's.
WARMUP, TIMED, ROUTE_STRIDE = 600_000, 700_000, 50_000


@dataclass(frozen=True)
class RmSizes:
    requests: int = 128
    """Timed requests per server, one sample each: about 4-5 minutes in all on a quiet 2-core
    CPU with the embedded model (judge-server's start with two vLLM engines takes 1-2 minutes,
    and either server scores 2-4 samples/s there)."""
    clients: int = 64
    warmup: int = 16


#: --quick: about 3-4 minutes on a 2-core CPU with the embedded model.
RM_QUICK = RmSizes(requests=64)


def rubric_definition() -> dict[str, Any]:
    return {
        "name": RM_NAME,
        "description": "judge-server bench: the value-head reward model, reward = sigmoid(logit).",
        "mode": "reward_model",
        "reward_model": {"model": RM_NAME},
    }


class Renderer:
    """The reward model's tokenizer: OpenRLHF's prompt and query text, token counts, and the
    whole conversation as judge-server's reward model renders it."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def from_folder(cls, folder: str) -> Renderer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(folder))

    def sample(self, item: JudgeItem) -> Sample:
        assert isinstance(item.prompt, str)
        prompt_text = str(
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": item.prompt}],
                tokenize=False,
                add_generation_prompt=True,
            )
        )
        query = prompt_text + item.response + str(self.tokenizer.eos_token)
        return Sample(item.id, item.prompt, item.response, prompt_text, query)

    def conversation(self, sample: Sample) -> str:
        messages = [
            {"role": "user", "content": sample.prompt},
            {"role": "assistant", "content": sample.response},
        ]
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False))

    def tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))


def value_head_folder(settings: Settings, work: Path) -> tuple[str, str]:
    """The model's folder, and how the figures name it."""
    if settings.reward_models:
        folder = next(iter(settings.reward_models.values()))
        return folder, folder
    from judge_server.cli.value_head import build_value_head_model
    from judge_server.engines.model_store import resolve_model

    base, name = resolve_model(settings.model, settings.cache_dir)
    built = build_value_head_model(Path(base), work / "value-head", seed=0)
    return str(built), f"{name} + seeded value head (build-value-head, seed 0)"


def judge_server_rm(settings: Settings, work: Path, folder: str, port: int) -> Server:
    cmd = [*judge_server_cmd(port), "--reward-model", f"{RM_NAME}={folder}"]
    return Server(cmd, judge_env(settings, work), port, "/ready")


def serve_rm(settings: Settings, folder: str, port: int) -> Server:
    module = "judge_server.cli.bench.serve_rm"
    cmd = [sys.executable, "-m", module, "--model", folder, "--port", str(port)]
    cmd += ["--max-len", str(settings.max_model_len)]
    return Server(cmd, dict(os.environ), port, "/openapi.json")


async def judge_logit(http: httpx.AsyncClient, base_url: str, sample: Sample) -> float:
    """The raw logit judge-server's reward model gives ``sample`` (``details.score``)."""
    body = {
        "rubric": RM_NAME,
        "items": [{"id": sample.id, "prompt": sample.prompt, "response": sample.response}],
        "options": {"cache": False},
    }
    resp = await http.post(f"{base_url}/v1/score", json=body)
    resp.raise_for_status()
    return float(resp.json()["results"][0]["details"]["score"])


async def timed(
    http: httpx.AsyncClient, send: Send, warm: list[Sample], samples: list[Sample], clients: int
) -> LoadResult:
    await one_sample_clients(http, send, warm, clients=clients)
    return await one_sample_clients(http, send, samples, clients=clients)


async def run_rm_vs_serve_rm(
    settings: Settings,
    *,
    sizes: RmSizes,
    json_path: Path | None = None,
    compile_model: bool = False,
) -> dict[str, Any]:
    settings = settings.model_copy(update={"enforce_eager": not compile_model})
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request
    work = Path(tempfile.mkdtemp(prefix="judge-bench-rm-"))
    (work / "rubrics").mkdir()
    (work / "rubrics" / f"{RM_NAME}.yaml").write_text(yaml.safe_dump(rubric_definition()))
    progress = Progress()
    try:
        figures = await _measure(settings, sizes, work, progress)
    except BaseException:
        print(f"judge-server bench: failed; server logs are in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    figures.update(
        cpus=os.cpu_count(), wall_s=progress.total_s, load_1m_after_step=progress.load_1m
    )
    figures = rm_report.add_ratios(figures)
    print(rm_report.table(figures))
    if json_path is not None:
        write_json(figures, json_path)
    return figures


async def _measure(
    settings: Settings, sizes: RmSizes, work: Path, progress: Progress
) -> dict[str, Any]:
    folder, model_name = value_head_folder(settings, work)
    render = Renderer.from_folder(folder)
    warm = [render.sample(i) for i in short_items(sizes.warmup, WARMUP)]

    def samples_for(route_number: int) -> list[Sample]:
        start = TIMED + route_number * ROUTE_STRIDE
        return [render.sample(i) for i in short_items(sizes.requests, start)]

    samples = samples_for(0)
    check = warm[0]
    figures: dict[str, Any] = {
        "rm_model": model_name,
        "rm_requests": sizes.requests,
        "rm_clients": sizes.clients,
        "rm_warmup": sizes.warmup,
        "rm_query_tokens_mean": sum(render.tokens(s.query) for s in samples) / len(samples),
    }
    progress.done("value head")
    async with client() as http:
        server = judge_server_rm(settings, work, folder, free_port())
        with serving(server, work / "judge-server.log") as started:
            figures["rm_judge_server_start_s"] = started.start_s
            progress.done("judge-server start")
            routes = await judge_server_senders(http, server.url, RM_NAME, check)
            for number, (route, send) in enumerate(routes):
                timed_samples = samples if number == 0 else samples_for(number)
                result = await timed(http, send, warm, timed_samples, sizes.clients)
                figures.update(rm_report.side_figures(rm_report.judge_prefix(route), result))
                figures[f"{rm_report.judge_prefix(route)}_route"] = route
                progress.done(f"judge-server {route.split('?')[0].removeprefix('POST ')}")
            figures["rm_judge_server_check_logit"] = await judge_logit(http, server.url, check)

        baseline = serve_rm(settings, folder, free_port())
        with serving(baseline, work / "serve-rm.log") as started:
            figures["rm_serve_rm_start_s"] = started.start_s
            progress.done("serve_rm start")
            send = get_reward_sender(baseline.url)
            result = await timed(http, send, warm, samples, sizes.clients)
            figures.update(rm_report.side_figures(rm_report.SERVE_RM, result))
            progress.done("serve_rm")
            # The same text judge-server's reward model scored: the logits must agree.
            whole = replace(check, query=render.conversation(check))
            figures["rm_serve_rm_check_logit"] = await send(http, whole)
    figures["rm_same_weights_abs_diff"] = abs(
        figures["rm_judge_server_check_logit"] - figures["rm_serve_rm_check_logit"]
    )
    return figures
