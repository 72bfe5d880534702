"""``bench --section rm-vs-serve-rm``'s machinery: the one-sample load generator, the wire
shapes it sends, the serve_rm baseline's route and forward, the figures and the table.

In-process ASGI apps and a tiny random model; no vLLM, no timing assertions (the real figures
come from ``judge-server bench --section rm-vs-serve-rm``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from judge_server.cli.bench import rm_report, serve_rm
from judge_server.cli.bench.rm_compare import Renderer, rubric_definition
from judge_server.cli.bench.rm_load import (
    LoadResult,
    Sample,
    get_reward_sender,
    judge_server_senders,
    one_sample_clients,
    percentile,
    v1_score_sender,
)
from judge_server.cli.main import build_parser
from judge_server.judges.modes import parse_rubric

BASE = "http://bench.test"


def samples(n: int) -> list[Sample]:
    return [
        Sample(str(i), f"p{i}", f"r{i}", f"<p{i}>", f"<p{i}>r{i}<eos>", label="") for i in range(n)
    ]


def http_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


class Recorder:
    """An app with both judge-server routes that records bodies and the most requests it held
    at once; each reward is the sample's number."""

    def __init__(self, with_get_reward: bool = True) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = self.most_in_flight = 0
        self.app = FastAPI()

        async def hold() -> None:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            await asyncio.sleep(0.01)  # lets the other clients' requests arrive
            self.in_flight -= 1

        @self.app.post("/v1/score")
        async def score(request: Request) -> dict[str, Any]:
            body = await request.json()
            self.bodies.append((str(request.url), body))
            await hold()
            item = body["items"][0]
            return {"results": [{"id": item["id"], "status": "ok", "reward": float(item["id"])}]}

        if with_get_reward:

            @self.app.post("/get_reward")
            async def get_reward(request: Request) -> dict[str, Any]:
                body = await request.json()
                self.bodies.append((str(request.url), body))
                await hold()
                number = float(body["query"][0].split(">")[0].removeprefix("<p"))
                return {"rewards": [number], "scores": [number], "extra_logs": {}}


async def test_every_sample_is_sent_once_by_at_most_clients_at_a_time() -> None:
    recorder = Recorder()
    async with http_for(recorder.app) as http:
        result = await one_sample_clients(http, v1_score_sender(BASE, "rm"), samples(40), clients=8)
    assert sorted(b["items"][0]["id"] for _, b in recorder.bodies) == sorted(
        str(i) for i in range(40)
    )
    assert result.rewards == {str(i): float(i) for i in range(40)}
    assert len(result.latencies_s) == 40 and all(t > 0 for t in result.latencies_s)
    assert recorder.most_in_flight == 8
    assert (result.samples, result.clients) == (40, 8)
    assert result.samples_per_s > 0


async def test_get_reward_sender_sends_openrlhfs_one_sample_body() -> None:
    recorder = Recorder()
    sample = samples(3)[2]
    async with http_for(recorder.app) as http:
        assert await get_reward_sender(BASE, "my rm")(http, sample) == 2.0
        assert await get_reward_sender(BASE)(http, sample) == 2.0
    (url, body), (plain_url, _) = recorder.bodies
    assert url == f"{BASE}/get_reward?rubric=my%20rm"
    assert plain_url == f"{BASE}/get_reward"
    assert body == {"query": ["<p2>r2<eos>"], "prompts": ["<p2>"], "labels": [""]}


async def test_v1_score_sender_sends_one_item_with_the_cache_off() -> None:
    recorder = Recorder()
    async with http_for(recorder.app) as http:
        assert await v1_score_sender(BASE, "rm")(http, samples(2)[1]) == 1.0
    [(_, body)] = recorder.bodies
    assert body == {
        "rubric": "rm",
        "items": [{"id": "1", "prompt": "p1", "response": "r1"}],
        "options": {"cache": False},
    }


async def test_judge_server_is_measured_on_get_reward_when_it_has_it_and_on_v1_score() -> None:
    probe = samples(1)[0]
    async with http_for(Recorder().app) as http:
        routes = await judge_server_senders(http, BASE, "rm", probe)
        assert [r for r, _ in routes] == ["POST /get_reward?rubric=rm", "POST /v1/score"]
        assert [await send(http, samples(5)[4]) for _, send in routes] == [4.0, 4.0]
    without = Recorder(with_get_reward=False)
    async with http_for(without.app) as http:
        routes = await judge_server_senders(http, BASE, "rm", probe)
        assert [r for r, _ in routes] == ["POST /v1/score"]
        assert await routes[0][1](http, samples(5)[4]) == 4.0
    assert [url for url, _ in without.bodies] == [f"{BASE}/v1/score"]
    assert rm_report.judge_prefix("POST /get_reward?rubric=rm") == rm_report.GET_REWARD
    assert rm_report.judge_prefix("POST /v1/score") == rm_report.V1_SCORE


async def test_a_refusal_from_the_get_reward_route_is_an_error_not_a_fallback() -> None:
    app = FastAPI()

    @app.post("/get_reward")
    async def refuse() -> Any:
        from fastapi.responses import JSONResponse

        error = {"type": "rubric_not_found", "message": "no rubric 'rm'", "param": "rubric"}
        return JSONResponse({"error": error}, status_code=404)

    async with http_for(app) as http:
        with pytest.raises(RuntimeError, match="HTTP 404"):
            await judge_server_senders(http, BASE, "rm", samples(1)[0])


async def test_an_error_answer_stops_the_load() -> None:
    app = FastAPI()

    @app.post("/get_reward")
    async def broken() -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"detail": "boom"}, status_code=500)

    async with http_for(app) as http:
        with pytest.raises(RuntimeError, match="HTTP 500"):
            await one_sample_clients(http, get_reward_sender(BASE), samples(4), clients=2)


async def test_serve_rm_route_answers_openrlhfs_shape_from_the_event_loop_thread() -> None:
    calls: list[list[str]] = []

    def get_reward(queries: list[str]) -> list[float]:
        asyncio.get_running_loop()  # raises unless called on the loop: one forward at a time
        calls.append(queries)
        return [float(len(q)) for q in queries]

    async with http_for(serve_rm.create_app(get_reward)) as http:
        answers = await asyncio.gather(
            *(http.post("/get_reward", json={"query": ["x" * n], "prompts": [""]}) for n in (1, 2))
        )
    assert sorted(map(len, (q[0] for q in calls))) == [1, 2]
    assert answers[1].json() == {
        "rewards": [2.0],
        "scores": [2.0],
        "extra_logs": {"dummy_scores": [2.0]},
    }


def test_openrlhf_forward_reads_the_last_attended_token_under_left_padding() -> None:
    torch = pytest.importorskip("torch")

    class Base(torch.nn.Module):  # hidden state = token embedding + position embedding
        def __init__(self) -> None:
            super().__init__()
            self.tokens = torch.nn.Embedding(16, 4)
            self.positions = torch.nn.Embedding(8, 4)

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any) -> Any:
            return {"last_hidden_state": self.tokens(input_ids) + self.positions(position_ids)}

    class Classifier(torch.nn.Module):  # a *ForSequenceClassification's layout
        base_model_prefix = "model"

        def __init__(self) -> None:
            super().__init__()
            self.model = Base()
            self.score = torch.nn.Linear(4, 1, bias=False)

    torch.manual_seed(0)
    model = Classifier()
    short, long = [5, 6, 7], [8, 9, 10, 11, 12]
    ids = torch.tensor([[0, 0, *short], long])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1] * 5])
    with torch.no_grad():
        batched = serve_rm.openrlhf_forward(model, ids, mask)
        alone = [
            serve_rm.openrlhf_forward(model, torch.tensor([s]), torch.ones(1, len(s))).item()
            for s in (short, long)
        ]
        expected = [
            model.score(
                model.model.tokens(torch.tensor(s[-1])) + model.model.positions.weight[i]
            ).item()
            for s, i in ((short, 2), (long, 4))
        ]
    assert batched.tolist() == pytest.approx(alone, abs=1e-6)
    assert alone == pytest.approx(expected, abs=1e-6)


def test_renderer_builds_openrlhfs_query_and_judge_servers_conversation() -> None:
    class Tokenizer:
        eos_token = "<eos>"

        def apply_chat_template(
            self,
            messages: list[dict[str, str]],
            tokenize: bool,
            add_generation_prompt: bool = False,
        ) -> str:
            assert not tokenize
            text = "".join(f"<{m['role']}>{m['content']}<eos>" for m in messages)
            return text + ("<assistant>" if add_generation_prompt else "")

        def encode(self, text: str, add_special_tokens: bool) -> list[int]:
            return [0] * len(text)

    from judge_server.judges import JudgeItem

    render = Renderer(Tokenizer())
    sample = render.sample(JudgeItem(id="7", prompt="hi", response="yo"))
    assert sample.prompt_text == "<user>hi<eos><assistant>"
    assert sample.query == "<user>hi<eos><assistant>yo<eos>"
    assert (sample.id, sample.prompt, sample.response, sample.label) == ("7", "hi", "yo", "")
    assert render.conversation(sample) == "<user>hi<eos><assistant>yo<eos>"
    assert render.tokens("abc") == 3


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([3.0], 95) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile(list(map(float, range(101))), 95) == 95.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_figures_ratios_and_table() -> None:
    fast = LoadResult(10, 4, 0.5, [0.1, 0.2, 0.3, 0.4], {})
    slow = LoadResult(10, 4, 2.0, [1.0, 2.0, 3.0, 4.0], {})
    middle = LoadResult(10, 4, 1.0, [0.5] * 4, {})
    figures = {
        "rm_requests": 10,
        "rm_clients": 4,
        "rm_warmup": 2,
        "rm_model": "/models/vh",
        "rm_query_tokens_mean": 83.0,
        **rm_report.side_figures(rm_report.GET_REWARD, fast),
        **rm_report.side_figures(rm_report.V1_SCORE, middle),
        **rm_report.side_figures(rm_report.SERVE_RM, slow),
        "rm_judge_server_check_logit": 0.25,
        "rm_serve_rm_check_logit": 0.25001,
        "rm_same_weights_abs_diff": 1e-5,
        "cpus": 2,
        "load_1m_after_step": {"judge-server /get_reward": 1.5, "serve_rm": 9.0},
    }
    assert figures["rm_judge_get_reward_samples_per_s"] == 20.0
    assert figures["rm_serve_rm_p50_ms"] == pytest.approx(2500.0)
    assert figures["rm_serve_rm_p95_ms"] == pytest.approx(3850.0)
    figures = rm_report.add_ratios(figures)
    assert figures["rm_judge_get_reward_over_serve_rm"] == 4.0
    assert figures["rm_judge_v1_score_over_serve_rm"] == 2.0
    text = rm_report.table(figures)
    assert "10 requests per row from 4 concurrent one-sample clients" in text
    rows = text.splitlines()
    row = next(r for r in rows if r.startswith("judge-server reward_model (POST /get_reward"))
    assert row.split()[-3:] == ["20.0", "250", "385"]
    assert any(r.startswith("OpenRLHF serve_rm (POST /get_reward") for r in rows)
    assert "judge-server /get_reward over serve_rm: 4.00x" in text
    assert "judge-server /v1/score over serve_rm: 2.00x" in text
    assert "|diff| 1.0e-05" in text
    assert "(2 CPUs): judge-server /get_reward 1.5, serve_rm 9.0" in text
    assert "busy machine during 'serve_rm'" in text
    only_v1 = rm_report.add_ratios({k: v for k, v in figures.items() if "get_reward" not in k})
    judge_rows = [r for r in rm_report.table(only_v1).splitlines() if r.startswith("judge-server")]
    assert [r.split(")")[0] for r in judge_rows] == [
        "judge-server reward_model (POST /v1/score, vLLM",
        "judge-server /v1/score over serve_rm: 2.00x",
    ]
    assert "rm_judge_v1_score_over_serve_rm" not in rm_report.add_ratios(
        {"rm_serve_rm_samples_per_s": 1.0}
    )


def test_cli_selects_the_section_and_the_rubric_is_valid() -> None:
    args = build_parser().parse_args(["bench", "--section", "rm-vs-serve-rm", "--requests", "8"])
    assert (args.section, args.requests) == ("rm-vs-serve-rm", 8)
    assert build_parser().parse_args(["bench"]).section == "core"
    assert parse_rubric(rubric_definition()).mode == "reward_model"
