"""judge-server bench's plumbing on the instant engine: every section, the table, the JSON.

No vLLM and no timing assertions: the real figures come from ``judge-server bench`` itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from judge_server.api import create_app
from judge_server.cli.bench import http_load, report, sections, servers
from judge_server.cli.bench.backends import instant_backends
from judge_server.cli.bench.http_load import client
from judge_server.cli.bench.instant_engine import InstantEngine
from judge_server.cli.bench.instant_server import bare_app
from judge_server.cli.bench.run import run
from judge_server.cli.bench.sections import Sizes, overhead_beside_bare
from judge_server.cli.bench.servers import (
    Server,
    free_port,
    instant_server_cmd,
    judge_env,
    serving,
    vllm_server_cmd,
)
from judge_server.cli.bench.workload import (
    POINTWISE_NAME,
    item_json,
    naive_messages,
    parse_naive_score,
    pointwise_definition,
    pointwise_rubric,
    short_items,
)
from judge_server.judges import judge_for
from judge_server.judges.prompting import judge_messages
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings
from tests.asgi import served

TINY = Sizes(
    throughput_items=24,
    cache_repeats=3,
    overhead_items=48,
    rubric_items=2,
    rubric_sentences=4,
    batch_size=8,
    clients=4,
    warmup_items=4,
)


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def not_negative(value: object) -> bool:
    return isinstance(value, float) and value >= 0


async def test_overhead_section_through_the_real_app_on_the_instant_engine(
    tmp_path: Path,
) -> None:
    import yaml

    (tmp_path / "rubrics").mkdir()
    rubric_file = tmp_path / "rubrics" / f"{POINTWISE_NAME}.yaml"
    rubric_file.write_text(yaml.safe_dump(pointwise_definition()))
    port, bare_port = free_port(), free_port()
    env = judge_env(Settings(), tmp_path)
    server = Server(instant_server_cmd(port, "judge"), env, port, "/ready")
    bare = Server(instant_server_cmd(bare_port, "bare"), env, bare_port, "/ready")
    # Enough items that the server's CPU time spans clock ticks (10 ms): a CPU figure read
    # from the wrong process, or never read, is then zero.
    sized = replace(TINY, overhead_items=512)
    with (
        serving(server, tmp_path / "server.log") as started,
        serving(bare, tmp_path / "bare.log") as bare_started,
    ):
        # The measured process is the server listening on the port, not this test's.
        assert started.pid != os.getpid()
        listening = {c.laddr.port for c in psutil.Process(started.pid).net_connections()}
        assert port in listening
        async with client() as http:
            figures = await overhead_beside_bare(
                http, (server.url, started.cpu_s), (bare.url, bare_started.cpu_s), sized
            )
    assert started.start_s > 0
    for path in ("overhead", "bare_framework"):
        assert positive(figures[f"{path}_items_per_s"])
        assert positive(figures[f"{path}_server_cpu_us_per_item"])
        assert positive(figures[f"{path}_client_cpu_us_per_item"])
        runs = figures[f"{path}_runs_items_per_s"]
        assert len(runs) == sized.engine_runs and figures[f"{path}_items_per_s"] == max(runs)
    assert positive(figures["overhead_single_item_requests_per_s"])


async def test_overhead_runs_alternate_which_server_goes_first_and_report_median_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neither server always runs second, on a machine the other just warmed or disturbed."""
    order: list[str] = []
    # Per server, (items/s, server and client CPU us per item) of each run in turn: the fastest
    # run is not the median-CPU one, so the test tells the figures apart.
    figures = {
        "judge": iter([(300.0, 150.0, 9.0), (100.0, 90.0, 5.0), (200.0, 120.0, 7.0)]),
        "bare": iter([(900.0, 20.0, 30.0), (800.0, 40.0, 50.0), (700.0, 30.0, 10.0)]),
    }

    async def batches(_: object, url: str, __: Sizes, ___: object) -> sections.PathRun:
        order.append(url)
        return sections.PathRun(*next(figures[url]))

    async def singles(*_: object, **__: object) -> http_load.Timed:
        return http_load.Timed(elapsed_s=1.0, client_cpu_s=0.5)

    monkeypatch.setattr(sections, "_overhead_batches", batches)
    monkeypatch.setattr(sections.http_load, "single_item_clients", singles)
    out = await overhead_beside_bare(
        None,  # type: ignore[arg-type]
        ("judge", lambda: 0.0),
        ("bare", lambda: 0.0),
        replace(TINY, engine_runs=3),
    )
    assert order == ["judge", "bare", "bare", "judge", "judge", "bare"]
    assert out["overhead_items_per_s"] == 300.0 and out["bare_framework_items_per_s"] == 900.0
    assert out["overhead_server_cpu_us_per_item"] == 120.0  # the median, not the fastest run's
    assert out["bare_framework_server_cpu_us_per_item"] == 30.0
    assert out["overhead_client_cpu_us_per_item"] == 7.0
    assert out["bare_framework_client_cpu_us_per_item"] == 30.0


async def test_full_run_on_the_instant_engine_writes_every_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    plot = tmp_path / "bench.png"
    figures = await run(
        Settings(),
        quick=True,
        json_path=out,
        plot_path=plot,
        backends=instant_backends,
        sizes=TINY,
    )
    written = json.loads(out.read_text())
    assert written == figures
    for key in report.REQUIRED_KEYS:
        if key == "naive_parse_failures":
            assert written[key] == 0  # the instant server always answers "Score: 5"
        elif key in report.CPU_KEYS:
            assert not_negative(written[key]), key  # CPU time counts in clock ticks (10 ms)
        else:
            assert positive(written[key]), key
    for ratio in report.RATIOS:
        assert positive(written[ratio.key]), ratio.key
    assert set(written["targets"]) == {
        "server_batch_over_engine_ceiling",
        "server_concurrent_over_batch",
        "rubric_k8_over_k1",
        "rubric_short_k8_over_k1",
        "cache_hit_items_per_s",
        "overhead_over_bare_framework",
        "cache_hit_over_bare_framework",
    }
    assert written["model"] == "instant-engine" and written["enforce_eager"] is True
    captured = capsys.readouterr()
    for key in report.REQUIRED_KEYS:
        assert key in captured.out
    assert "server batch / engine ceiling" in captured.out
    # every path whose client outspent its server is named, and noted under the table
    for path in ("overhead", "bare_framework", "cache_hit"):
        client, server = (written[f"{path}_{who}_cpu_us_per_item"] for who in ("client", "server"))
        bound = client > server
        assert (path in written["load_generator_bound"]) == bound
        noted = f"note: {path}_items_per_s is bounded by the load generator" in captured.out
        assert noted == bound
    assert "[bench" in captured.err and "engine ceiling" in captured.err
    # matplotlib is optional: either a chart or a message saying why there is none
    assert plot.exists() or "--plot needs matplotlib" in captured.err


def test_ratios_and_targets() -> None:
    figures = report.add_ratios(
        {
            "engine_ceiling_items_per_s": 10.0,
            "server_batch_items_per_s": 9.5,
            "server_concurrent_items_per_s": 5.0,
            "naive_baseline_items_per_s": 2.0,
            "cache_hit_items_per_s": 6000.0,
            "overhead_items_per_s": 4000.0,
            "bare_framework_items_per_s": 10000.0,
            "rubric_k1_s": 2.0,
            "rubric_k8_s": 2.8,
            "rubric_short_k1_s": 1.0,
            "rubric_short_k8_s": 1.6,
        }
    )
    assert figures["server_batch_over_engine_ceiling"] == pytest.approx(0.95)
    assert figures["server_concurrent_over_naive"] == pytest.approx(2.5)
    assert figures["overhead_over_bare_framework"] == pytest.approx(0.4)
    assert figures["targets_met"] == {
        "server_batch_over_engine_ceiling": True,
        "server_concurrent_over_batch": False,
        "rubric_k8_over_k1": True,
        "rubric_short_k8_over_k1": False,
        "cache_hit_items_per_s": True,
        "overhead_over_bare_framework": False,
        "cache_hit_over_bare_framework": True,
    }
    assert "NOT met" in report.table(figures)
    assert figures["load_generator_bound"] == []  # no CPU figures, nothing to say


def test_a_path_whose_client_outspent_its_server_is_flagged() -> None:
    figures = report.add_ratios(
        {
            "overhead_server_cpu_us_per_item": 200.0,
            "overhead_client_cpu_us_per_item": 30.0,
            "bare_framework_server_cpu_us_per_item": 11.0,
            "bare_framework_client_cpu_us_per_item": 25.0,
            "cache_hit_server_cpu_us_per_item": 80.0,
        }
    )
    assert figures["load_generator_bound"] == ["bare_framework"]
    notes = [line for line in report.table(figures).splitlines() if "load generator" in line]
    assert len(notes) == 1 and "bare_framework_items_per_s" in notes[0]
    assert "25.0 us" in notes[0] and "11.0 us" in notes[0]


async def test_the_bare_route_answers_the_shape_of_the_real_one(tmp_path: Path) -> None:
    """The framework's ceiling is only a ceiling if it does the same HTTP work: the same JSON
    keys at every level, for the same request."""
    import yaml

    (tmp_path / "rubrics").mkdir()
    rubric_file = tmp_path / "rubrics" / f"{POINTWISE_NAME}.yaml"
    rubric_file.write_text(yaml.safe_dump(pointwise_definition()))
    body = {"rubric": POINTWISE_NAME, "items": [item_json(i) for i in short_items(2, 0)]}
    async with served(
        create_app(Settings(rubrics_dir=tmp_path / "rubrics"), InstantEngine())
    ) as app:
        real = (await app.post("/v1/score", json=body)).json()
    async with served(bare_app()) as app:
        bare = (await app.post("/v1/score", json=body)).json()

    def shape(value: object) -> object:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(v) for v in value]
        return type(value).__name__

    assert shape(bare) == shape(real)
    assert [r["id"] for r in bare["results"]] == ["0", "1"]


def test_busy_steps_are_flagged() -> None:
    figures = report.add_ratios(
        {"cpus": 2, "load_1m_after_step": {"engine ceiling": 10.0, "server batch": 2.1}}
    )
    notes = report.busy_notes(figures)
    assert len(notes) == 1 and "engine ceiling" in notes[0]
    assert notes[0] in report.table(figures)


def test_missing_figures_leave_their_ratios_out() -> None:
    figures = report.add_ratios({"rubric_k1_s": 1.0})
    assert "rubric_k8_over_k1" not in figures
    assert "n/a" in report.table(figures)


async def test_workload_is_one_prompt_for_every_section() -> None:
    a, b = short_items(2, 0), short_items(2, 100)
    assert a == short_items(2, 0)  # deterministic
    assert {i.prompt for i in a}.isdisjoint({i.prompt for i in b})
    judge = judge_for(pointwise_rubric())
    item = a[0]
    judge_text = judge_messages(judge.rubric, item)[-1]["content"]
    naive_text = naive_messages(item)[-1]["content"]
    # the same prompt up to the answer instruction
    assert judge_text.rsplit("Reply", 1)[0] == naive_text.rsplit("Reply", 1)[0]
    results = await Scorer(InstantEngine()).score(judge, a, timeout_s=5)
    assert [r.status for r in results] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("text", "score"),
    [("Score: 7", 7), ("score:3 because", 3), ("I think 7", None), ("Score: 10", None), ("", None)],
)
def test_naive_parse(text: str, score: int | None) -> None:
    assert parse_naive_score(text) == score


def test_the_naive_baseline_uses_the_judge_servers_kv_block_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both servers cache prefixes in blocks of the same size, or the comparison is unfair:
    the one set, else the engine's own default (32 on a CPU, vLLM's on GPU)."""
    cmd = vllm_server_cmd(8000, "/models/judge", Settings(kv_block_size=64), "float32")
    assert cmd[cmd.index("--block-size") + 1] == "64"
    monkeypatch.setattr(servers, "runs_on_cpu", lambda: True)
    cmd = vllm_server_cmd(8000, "/models/judge", Settings(), "float32")
    assert cmd[cmd.index("--block-size") + 1] == "32"
    # the routing section's replicas run as a user's fleet would: vLLM's own unless one is set
    fleet = vllm_server_cmd(8000, "/models/judge", Settings(), "float32", engine_blocks=False)
    assert "--block-size" not in fleet
    monkeypatch.setattr(servers, "runs_on_cpu", lambda: False)
    assert "--block-size" not in vllm_server_cmd(8000, "/models/judge", Settings(), "float32")
