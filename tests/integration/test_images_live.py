"""Image items on real vLLM: a tiny vision-language judge built here (``build-tiny-vlm``: a
seeded Idefics3 vision tower on the embedded SmolLM2), in-process and through a stock
``vllm serve`` (its token-in endpoint, ``engines.generate_wire``).

Two vLLM starts in all (the in-process engine, one ``vllm serve``), each with a small context
and KV cache. The vision tower is random, so only what does not depend on its training is
asserted: images change the verdict, the same image gives the same verdict, both engines agree,
and bad images are refused per item.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from judge_server.api import create_app
from judge_server.cli.bench.servers import free_port
from judge_server.cli.bench.servers import stop_process as stop
from judge_server.cli.tiny_vlm import build_tiny_vlm
from judge_server.engines.base import JudgeEngine
from judge_server.engines.factory import build_engine
from judge_server.engines.images import ImageData, providing
from judge_server.engines.model_store import resolve_model
from judge_server.engines.remote import RemoteEngine
from judge_server.settings import Settings, project_rubrics_dir
from tests.integration.conftest import LOG_DIR

MAX_MODEL_LEN = 512


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), color).save(buffer, format="PNG")
    return buffer.getvalue()


def image_part(data: bytes) -> dict[str, Any]:
    url = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


RED, BLUE = png("red"), png("blue")


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = Path(resolve_model(None, Settings().cache_dir)[0])
    return build_tiny_vlm(base, tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture(scope="module")
def settings(tiny_vlm: Path) -> Settings:
    return Settings(
        model=str(tiny_vlm),
        max_model_len=MAX_MODEL_LEN,
        kv_cache_gib=0.05,
        enforce_eager=True,
        rubrics_dir=project_rubrics_dir(),
        cache_backend="none",
    )


@pytest.fixture(scope="module")
def engine(settings: Settings) -> JudgeEngine:
    return build_engine(settings)


@pytest.fixture(scope="module")
def client(settings: Settings, engine: JudgeEngine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine)) as c:
        deadline = time.monotonic() + 600
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, c.get("/ready").text
            time.sleep(1)
        yield c


def score(client: TestClient, items: list[dict[str, Any]], rubric: str = "helpfulness") -> Any:
    resp = client.post("/v1/score", json={"rubric": rubric, "items": items})
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]


def test_a_vision_judge_scores_image_items_in_process(client: TestClient) -> None:
    prompt = [{"role": "user", "content": [{"type": "text", "text": "Draw a red square."}]}]
    results = score(
        client,
        [
            {"prompt": prompt, "response": [image_part(RED)]},
            {"prompt": prompt, "response": [image_part(BLUE)]},
            {"prompt": prompt, "response": [{"type": "text", "text": "Here: "}, image_part(RED)]},
            {"prompt": prompt, "response": [image_part(b"\x89PNG\r\n\x1a\nbroken")]},
            {"prompt": "Say hi.", "response": "Hi!"},  # a text item on the same judge
            {"prompt": prompt, "response": [image_part(RED)]},
        ],
    )
    statuses = [r["status"] for r in results]
    assert statuses == ["ok", "ok", "ok", "invalid_input", "ok", "ok"], results
    assert "cannot be" in results[3]["error"]
    rewards = [r["reward"] for r in results]
    assert all(0.0 <= r <= 1.0 for r in rewards if r is not None)
    assert rewards[0] != pytest.approx(rewards[1], abs=1e-6)  # the judge sees the image
    assert rewards[5] == pytest.approx(rewards[0], abs=1e-5)  # and the same one alike
    # Each image is one placeholder token that vLLM expands to its features (4 here).
    assert results[0]["usage"]["prompt_tokens"] > 0


def test_group_rewards_over_image_responses(client: TestClient) -> None:
    resp = client.post(
        "/v1/score/group",
        json={
            "rubric": "pairwise",
            "prompt": "Draw a red square.",
            "responses": [[image_part(RED)], [image_part(BLUE)], [image_part(RED)]],
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [r["status"] for r in body["results"]] == ["ok", "ok", "ok"]
    assert body["results"][0]["reward"] == body["results"][2]["reward"]
    assert [(c["i"], c["j"]) for c in body["comparisons"] if c["identical"]] == [(0, 2)]
    assert body["pairing"]["judge_calls"] == 1  # one distinct pair, both orders


@pytest.fixture(scope="module")
def vllm_serve(tiny_vlm: Path) -> Iterator[str]:
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / "vllm-serve-tiny-vlm.log"
    # A small KV cache: the CPU worker honours --kv-cache-memory-bytes unless this is set.
    env = {k: v for k, v in os.environ.items() if k != "VLLM_CPU_KVCACHE_SPACE"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
             str(tiny_vlm), "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
             "--max-model-len", str(MAX_MODEL_LEN), "--enforce-eager", "--enable-scale-out",
             "--enable-prompt-tokens-details", "--limit-mm-per-prompt", '{"image": 4}',
             "--kv-cache-memory-bytes", str(64 << 20)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, "vllm serve not healthy in time"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield url
    finally:
        stop(proc)


def test_the_remote_engine_sends_images_to_vllm_serve_and_agrees_with_in_process(
    client: TestClient, engine: JudgeEngine, vllm_serve: str, tiny_vlm: Path
) -> None:
    async def remote_reads() -> list[dict[str, float]]:
        remote = RemoteEngine([vllm_serve], model=str(tiny_vlm), max_model_len=MAX_MODEL_LEN)
        await remote.start()
        try:
            assert remote.takes_images
            reads = []
            for data in (RED, BLUE):
                image = ImageData.of(data)
                prompt = remote.render_chat(
                    [{"role": "user", "content": f"Is this red? {image.slot}"}]
                )
                with providing([image]):
                    out = await remote.next_token_logprobs(prompt, ["Yes", "No"])
                    text = await remote.generate(prompt, max_tokens=2)
                assert out.num_prompt_tokens > 0 and text.finish_reason is not None
                reads.append(out.logprobs)
            return reads
        finally:
            await remote.shutdown()

    red, blue = asyncio.run(remote_reads())
    assert red["Yes"] != pytest.approx(blue["Yes"], abs=1e-6)
    # The in-process engine, same prompt and image: the same numbers.
    image = ImageData.of(RED)
    prompt = engine.render_chat([{"role": "user", "content": f"Is this red? {image.slot}"}])

    async def local_read() -> dict[str, float]:
        with providing([image]):
            return dict((await engine.next_token_logprobs(prompt, ["Yes", "No"])).logprobs)

    assert client.portal is not None
    local = client.portal.call(local_read)
    assert local["Yes"] == pytest.approx(red["Yes"], abs=1e-3)
