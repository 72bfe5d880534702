"""Keys, the bind refusal and a read-only rubrics directory on a real ``judge-server serve``.

One server (real vLLM, embedded model) listens on 0.0.0.0 with two API keys, an admin token and
its rubrics directory mounted read-only (as a ConfigMap is), so the bind check lets it start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest
from judge_client import (
    AsyncJudgeClient,
    AuthenticationError,
    ConflictError,
    JudgeClient,
    PermissionDeniedError,
)

from judge_server.settings import project_rubrics_dir
from tests.integration.conftest import (
    ADMIN_TOKEN,
    engine_env,
    free_port,
    start_server,
    stop,
    wait_ready,
)

KEYS = ("sk-live-one", "sk-live-two")
ITEM = {"prompt": "What is 2+2?", "response": "4"}


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def read_only_rubrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the shipped rubrics the server cannot write: a read-only bind mount as root
    (EROFS, what a ConfigMap mount gives), directory permissions otherwise (EACCES)."""
    d = tmp_path_factory.mktemp("ro") / "rubrics"
    shutil.copytree(project_rubrics_dir(), d)
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    if not _run("mount", "--bind", str(d), str(d)):
        pytest.skip("cannot make a read-only mount here")
    try:
        if not _run("mount", "-o", "remount,bind,ro", str(d)):
            pytest.skip("cannot make a read-only mount here")
        yield d
    finally:
        _run("umount", str(d))


@pytest.fixture(scope="module")
def keyed_url(read_only_rubrics: Path) -> Iterator[str]:
    port = free_port()
    proc, log_path = start_server(
        port,
        "auth.log",
        "--host",
        "0.0.0.0",
        "--api-key",
        KEYS[0],
        "--api-key",
        KEYS[1],
        "--rubrics-dir",
        str(read_only_rubrics),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, proc, log_path)  # /ready needs no key
        yield base_url
    finally:
        stop(proc)


def test_bind_refusal_exits_before_the_engine_starts() -> None:
    env = engine_env()
    for name in ("JUDGE_API_KEYS", "JUDGE_TRUST_NETWORK"):
        env.pop(name, None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "judge_server", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 30  # no engine start (that takes a minute here)
    assert "refusing to listen on '0.0.0.0' without API keys" in done.stderr
    assert "JUDGE_API_KEYS" in done.stderr and "--trust-network" in done.stderr
    assert "vllm" not in done.stderr.lower()


def test_keys_are_enforced_on_the_real_server(keyed_url: str) -> None:
    assert httpx.get(f"{keyed_url}/health").status_code == 200
    body = {"rubric": "correctness", "items": [{**ITEM, "reference": "4"}]}
    missing = httpx.post(f"{keyed_url}/v1/score", json=body, timeout=120)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(
        f"{keyed_url}/v1/score", json=body, headers={"Authorization": "Bearer sk-x"}, timeout=120
    )
    assert wrong.status_code == 401
    assert httpx.get(f"{keyed_url}/v1/rubrics").status_code == 401
    for key in KEYS:
        ok = httpx.post(
            f"{keyed_url}/v1/score",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=300,
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["results"][0]["status"] == "ok"

    # the client sends its api_key as a bearer
    with JudgeClient(keyed_url, api_key=KEYS[1]) as client:
        assert client.rewards("correctness", [{**ITEM, "reference": "4"}])[0] is not None
    with JudgeClient(keyed_url) as client, pytest.raises(AuthenticationError):
        client.list_rubrics()


async def test_a_url_only_trainer_carries_the_key_as_url_credentials(keyed_url: str) -> None:
    """OpenRLHF posts with aiohttp and no headers: a key in the URL's userinfo is sent as
    Basic credentials and accepted."""
    host = keyed_url.removeprefix("http://")
    payload = {"query": ["What is 2+2? 4"], "prompts": ["What is 2+2?"], "labels": ["4"]}
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        url = f"http://judge:{KEYS[0]}@{host}/get_reward?rubric=correctness"
        async with session.post(url, json=payload) as resp:
            assert resp.status == 200, await resp.text()
            assert len((await resp.json())["rewards"]) == 1
        async with session.post(f"{keyed_url}/get_reward?rubric=correctness", json=payload) as r:
            assert r.status == 401


async def test_rubric_changes_need_the_admin_token_and_a_writable_directory(
    keyed_url: str,
) -> None:
    definition = {"mode": "verdict", "template": "{prompt} {response} Yes or No?"}
    async with AsyncJudgeClient(keyed_url, api_key=KEYS[0]) as scorer:
        before = (await scorer.get_rubric("helpfulness"))["version"]
        with pytest.raises(PermissionDeniedError):  # a scoring key cannot change rubrics
            await scorer.put_rubric("helpfulness", definition)
        with pytest.raises(PermissionDeniedError):
            await scorer.delete_rubric("helpfulness")
    async with AsyncJudgeClient(keyed_url, api_key=KEYS[1], admin_token=ADMIN_TOKEN) as admin:
        for change in (
            admin.put_rubric("helpfulness", definition),
            admin.put_rubric("brand_new", definition),
            admin.delete_rubric("helpfulness"),
        ):
            with pytest.raises(ConflictError) as err:  # read-only directory: 409, not 500
                await change
            assert err.value.error_type == "rubrics_read_only"
        # the last good version keeps serving
        assert (await admin.get_rubric("helpfulness"))["version"] == before
        scored = await admin.score("helpfulness", [ITEM])
        assert scored.rubric.version == before
