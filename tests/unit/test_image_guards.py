"""Image inputs that must stay one item's problem: malformed and escaping URLs, a group's
broken response image, judges that cannot see images, modes that cannot count them."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from judge_server.api.protocol import ScoreItemIn
from judge_server.cli.bench.workload import pointwise_rubric
from judge_server.engines.base import PromptTooLongError
from judge_server.engines.images import image_feature_tokens, open_image
from judge_server.judges import judge_for
from judge_server.judges.image_parts import allowed_url
from judge_server.service.image_checks import image_checked, image_limits, text_only
from judge_server.service.image_fetch import fetch_images
from judge_server.service.scoring import ScoreInput, Scorer
from judge_server.settings import Settings
from tests.fakes import ScriptedEngine
from tests.unit.test_images import BLUE, RED, VisionEngine, image_part, make_client, score

PREFIX = "https://img.test/ok/"


def url_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def test_a_malformed_image_url_is_that_items_invalid_input_never_a_500() -> None:
    bad = PREFIX + "a\x7fb.png"  # httpx refuses it: InvalidURL, which is no HTTPError
    with make_client(VisionEngine(), image_url_prefixes=PREFIX) as client:
        results = score(
            client,
            [
                {"prompt": "p", "response": [url_part(bad)]},
                {"prompt": "p", "response": [url_part(PREFIX + "x" * 3000)]},
                {"prompt": "p", "response": [image_part(RED)]},
            ],
        )
        assert [r["status"] for r in results] == ["invalid_input", "invalid_input", "ok"]
        group = client.post(
            "/v1/score/group",
            json={"rubric": "pairwise", "prompt": "p", "responses": [[url_part(bad)], "b"]},
        )
    assert group.status_code == 422, group.text
    assert group.json()["error"]["param"] == "responses"


def test_a_fetch_that_httpx_refuses_is_a_message() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.InvalidURL("no")

    settings = Settings(image_url_prefixes=PREFIX)
    fetched = asyncio.run(
        fetch_images(
            [[url_part(PREFIX + "a.png")]], settings, transport=httpx.MockTransport(refuse)
        )
    )
    assert fetched == {PREFIX + "a.png": "the image could not be fetched (InvalidURL)"}


@pytest.mark.parametrize(
    "url",
    [
        PREFIX + "../secret.png",
        PREFIX + "%2e%2e/secret.png",
        PREFIX + "a/./b.png",
        PREFIX + "..\\secret.png",
        "https://user:pw@img.test/ok/a.png",
        "https://img.test:8443/ok/a.png",
        "http://img.test/ok/a.png",
        "https://img.test.evil.org/ok/a.png",
        "https://img.test/okay/a.png",
    ],
)
def test_urls_escaping_the_prefix_are_never_fetched(url: str) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"fetched {request.url}")

    settings = Settings(image_url_prefixes=PREFIX)
    assert not allowed_url(url, [PREFIX])
    fetched = asyncio.run(
        fetch_images([[url_part(url)]], settings, transport=httpx.MockTransport(never))
    )
    assert fetched == {}
    refused = ScoreItemIn(prompt="p", response=[url_part(url)]).to_input(
        "0", images=image_limits(settings, fetched)
    )
    assert "JUDGE_IMAGE_URL_PREFIXES" in getattr(refused, "reason", "")


def test_urls_under_the_prefix_are_allowed_as_httpx_reads_them() -> None:
    assert allowed_url(PREFIX + "a.png?v=../x", [PREFIX])
    assert allowed_url("HTTPS://IMG.test/ok/a%20b.png", [PREFIX])


def test_a_broken_response_image_fails_only_its_own_comparisons() -> None:
    broken = image_part(b"\x89PNG\r\n\x1a\n not really")
    with make_client(VisionEngine()) as client:
        resp = client.post(
            "/v1/score/group",
            json={
                "rubric": "pairwise",
                "prompt": [{"role": "user", "content": [{"type": "text", "text": "Draw"}]}],
                "responses": [[image_part(RED)], [image_part(BLUE)], [broken]],
                "options": {"pairing": "all_pairs"},
            },
        )
    assert resp.status_code == 200, resp.text
    status = {(c["i"], c["j"]): c["status"] for c in resp.json()["comparisons"]}
    assert status[(0, 1)] == "ok"
    assert status[(0, 2)] == status[(1, 2)] == "invalid_input"


async def test_text_only_judges_refuse_image_items_naming_their_own_model() -> None:
    """A process reward model (and a reward model) reads text: its image items are refused in
    the one shared place, naming the PRM, even on a vision-language main engine."""
    from tests.unit.test_process_reward_model import FakePrm
    from tests.unit.test_process_reward_model import rubric as prm_rubric

    judge = judge_for(prm_rubric(), reward_models={"toy": FakePrm("the-prm")})
    engine = VisionEngine()
    assert engine.takes_images and not judge.takes_images
    refusal = text_only(judge, engine, "the-prm")
    items: list[ScoreInput] = [
        ScoreItemIn(
            prompt="p", response=[{"type": "text", "text": "Step 1: a"}, image_part(RED)]
        ).to_item("0"),
        ScoreItemIn(prompt="p", response="Step 1: p=0.9 a\nStep 2: b").to_item("1"),
    ]
    checked = await image_checked(items, Settings(), refusal)
    results = await Scorer(engine).score(judge, checked, timeout_s=5)
    assert results[0].status == "invalid_input"
    assert "the-prm does not take images" in str(results[0].error)
    assert "process_reward_model mode" in str(results[0].error)
    assert results[1].status == "ok"
    assert text_only(judge_for(pointwise_rubric()), engine, "x") is None


def test_a_text_only_judge_fetches_no_image_url() -> None:
    """The refusal comes before any fetch: no connection to the (unreachable) host is tried."""
    never = httpx.MockTransport(lambda request: pytest.fail(f"fetched {request.url}"))
    fetched = asyncio.run(
        fetch_images([[url_part(PREFIX + "a.png")]], Settings(), refusal="no", transport=never)
    )
    assert fetched == {}  # no prefix configured: nothing is even named
    settings = Settings(image_url_prefixes=PREFIX)
    fetched = asyncio.run(
        fetch_images([[url_part(PREFIX + "a.png")]], settings, refusal="no", transport=never)
    )
    assert fetched == {PREFIX + "a.png": "no"}
    with make_client(ScriptedEngine(), image_url_prefixes=PREFIX) as client:
        results = score(client, [{"prompt": "p", "response": [url_part(PREFIX + "a.png")]}])
    assert results[0]["status"] == "invalid_input"
    assert "fake-judge does not take images" in results[0]["error"]


def test_likelihood_mode_refuses_image_items_and_scores_text_ones() -> None:
    with make_client(VisionEngine()) as client:
        results = score(
            client,
            [
                {"prompt": "p", "response": [image_part(RED)], "reference": "r"},
                {"prompt": "p", "response": "text", "reference": "r"},
            ],
            rubric="reference_likelihood",
        )
    assert results[0]["status"] == "invalid_input"
    assert "likelihood mode" in results[0]["error"] and "text only" in results[0]["error"]
    assert results[1]["status"] == "ok"


def test_the_length_check_counts_each_images_features(tmp_path: Path) -> None:
    from transformers import Idefics3Config

    from judge_server.cli.tiny_vlm import IMAGE_SIZE, IMAGE_TOKENS, PATCH_SIZE, SCALE_FACTOR

    Idefics3Config(
        vision_config={"image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE},
        scale_factor=SCALE_FACTOR,
    ).save_pretrained(tmp_path)
    assert image_feature_tokens(str(tmp_path)) == IMAGE_TOKENS == 4
    assert image_feature_tokens(str(tmp_path / "absent")) == 1
    engine = ScriptedEngine(max_model_len=20)
    engine.image_features = 4
    assert engine.check_length([0] * 10, reserve=1, images=3) == [0] * 10  # 10 + 3 * 3 + 1 = 20
    with pytest.raises(PromptTooLongError):
        engine.check_length([0] * 10, reserve=1, images=4)  # 10 + 4 * 3 + 1 > 20


def test_only_png_jpeg_webp_and_gif_are_decoded() -> None:
    def encoded(fmt: str) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (4, 4), "red").save(buffer, format=fmt)
        return buffer.getvalue()

    for fmt in ("PNG", "JPEG", "WEBP", "GIF"):
        assert open_image(encoded(fmt)).size == (4, 4)
    for fmt in ("BMP", "TIFF"):  # Pillow reads them, but they are not taken
        with pytest.raises(ValueError, match="cannot be read"):
            open_image(encoded(fmt))
