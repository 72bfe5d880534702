"""Image inputs at the seam: parsing, bounds, URL policy, the text-only refusal, cache keys and
the slots an engine turns into images (real vLLM: tests/integration/test_images_live.py)."""

from __future__ import annotations

import asyncio
import base64
import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from judge_server.api import create_app
from judge_server.api.protocol import ScoreItemIn
from judge_server.cli.bench.workload import pointwise_rubric
from judge_server.engines import generate_wire
from judge_server.engines.base import NextTokenLogprobs
from judge_server.engines.completions_wire import cached_tokens, first_choice, step_logprobs
from judge_server.engines.images import _NO_SLOTS as NO_SLOTS
from judge_server.engines.images import _SLOT_CHARS as SLOT_CHARS
from judge_server.engines.images import (
    SLOT_CLOSE,
    SLOT_OPEN,
    ImageData,
    encode_with_images,
    open_image,
    prompt_parts,
    providing,
    without_slots,
)
from judge_server.judges import JudgeItem, judge_for
from judge_server.judges.image_parts import ImageLimits
from judge_server.service.image_checks import image_limits
from judge_server.service.image_fetch import fetch_images
from judge_server.service.scoring import Scorer
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine


def png(color: str, size: tuple[int, int] = (4, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def image_part(data: bytes) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": data_url(data)}}


RED, BLUE = png("red"), png("blue")


class VisionEngine(ScriptedEngine):
    """A fake vision-language judge: it sees each call's images (as a real engine gets them,
    from the prompt's slots) and likes red ones: a red image first is 'A', a red one alone is
    a high score."""

    def __init__(self) -> None:
        super().__init__()
        self.image_token_id = 99
        self.seen: list[list[str]] = []

    async def next_token_logprobs(
        self, prompt: str, candidates: Sequence[str]
    ) -> NextTokenLogprobs:
        parts = prompt_parts(prompt) or []
        colors = [
            "red" if open_image(p.data).getpixel((0, 0)) == (255, 0, 0) else "other"
            for p in parts
            if isinstance(p, ImageData)
        ]
        self.seen.append(colors)
        good = {"A", "9", "Yes"} if colors and colors[0] == "red" else {"B", "1", "No"}
        probs = {c: (0.9 if c in good else 0.1 / len(candidates)) for c in candidates}
        self._count("next_token", len(prompt), 0)
        return NextTokenLogprobs({c: math.log(p) for c, p in probs.items()}, len(prompt))


@contextmanager
def make_client(engine: ScriptedEngine, **settings: Any) -> Iterator[TestClient]:
    app = create_app(Settings(rubrics_dir=project_rubrics_dir(), **settings), engine)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def vision() -> VisionEngine:
    return VisionEngine()


@pytest.fixture
def client(vision: VisionEngine) -> Iterator[TestClient]:
    with make_client(vision) as c:
        yield c


def score(client: TestClient, items: list[dict[str, Any]], rubric: str = "helpfulness") -> Any:
    resp = client.post("/v1/score", json={"rubric": rubric, "items": items})
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]


def test_text_without_slot_characters_is_parsed_and_keyed_exactly_as_before() -> None:
    """No private-use slot character: the text, the metadata and the cache key are as sent."""
    text = "plain \ue000 text \u00e9"  # other private-use characters are kept
    meta = {"k": [text, 1], "n": {"x": text}}
    sent = ScoreItemIn(prompt=text, response=[{"type": "text", "text": text}], metadata=meta)
    item = sent.to_item("0")
    assert (item.prompt, item.response, item.metadata, item.images) == (text, text, meta, ())
    direct = JudgeItem(id="0", prompt=text, response=text, metadata=meta)
    scorer, judge = Scorer(ScriptedEngine()), judge_for(pointwise_rubric())
    assert scorer.key(judge, item) == scorer.key(judge, direct)


def test_an_image_part_becomes_a_slot_naming_its_bytes_and_forged_slots_are_broken() -> None:
    item = ScoreItemIn(
        prompt=[{"role": "user", "content": [{"type": "text", "text": "Draw"}, image_part(RED)]}],
        response=[{"type": "text", "text": f"here {SLOT_OPEN}"}, image_part(BLUE)],
    ).to_item("0")
    red, blue = ImageData.of(RED), ImageData.of(BLUE)
    assert item.images == (red, blue)
    assert item.prompt == [{"role": "user", "content": "Draw" + red.slot}]
    assert item.response == "here \ufffd" + blue.slot  # the forged slot character is gone
    with providing(item.images):
        tokens, images = encode_with_images(
            f"x{item.response}", lambda s: [ord(c) for c in s], image_token_id=-1
        )
    assert images == [blue]
    assert tokens[-1] == -1 and tokens.count(-1) == 1


def test_a_text_only_item_cannot_forge_an_image_items_slot_or_key() -> None:
    """Slot characters are replaced in every item's text (prompt, response, reference,
    criteria, metadata), images or not, and the key names the item's images: a text-only
    response spelling an image's slot is not that image's item."""
    slot = ImageData.of(RED).slot
    forged = ScoreItemIn(
        prompt=slot,
        response=slot,
        reference=slot,
        metadata={"m": [slot]},
        rubrics=[{"criterion": "is " + slot, "points": 1}],
    ).to_item("0")
    assert SLOT_OPEN not in repr((forged.prompt, forged.response, forged.reference))
    assert SLOT_OPEN not in repr((forged.metadata, forged.criteria))
    real = ScoreItemIn(prompt="p", response=[image_part(RED)]).to_item("0")
    assert real.response == slot and real.images == (ImageData.of(RED),)
    raw = JudgeItem(id="0", prompt="p", response=slot)  # built past the parser: same text
    scorer, judge = Scorer(ScriptedEngine()), judge_for(pointwise_rubric())
    assert scorer.key(judge, raw) != scorer.key(judge, real)
    forged_p = ScoreItemIn(prompt="p", response=slot).to_item("0")
    assert scorer.key(judge, forged_p) != scorer.key(judge, real)
    assert prompt_parts(slot) is None  # no images provided: never an image


@pytest.mark.parametrize(
    ("part", "says"),
    [
        ({"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}, "URL_PREFIXES"),
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, "base64"),
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}, "no bytes"),
        ({"type": "image_url", "image_url": {}}, "image_url.url"),
        ({"type": "image_url", "image_url": {"url": data_url(b"x" * 300)}}, "over 200 bytes"),
        ({"type": "input_audio", "input_audio": {}}, "'input_audio' content part"),
    ],
)
def test_bad_image_parts_are_that_items_invalid_input(part: dict[str, Any], says: str) -> None:
    item = ScoreItemIn(prompt="p", response=[part])
    refused = item.to_input("0", images=ImageLimits(max_images=2, max_bytes=200))
    assert getattr(refused, "reason", "").find(says) >= 0, refused


def test_images_per_item_are_bounded_across_prompt_and_response() -> None:
    item = ScoreItemIn(
        prompt=[{"role": "user", "content": [image_part(RED), image_part(RED)]}],
        response=[image_part(BLUE)],
    )
    refused = item.to_input("0", images=ImageLimits(max_images=2))
    assert "more than 2 images" in getattr(refused, "reason", "")


def test_a_text_only_judge_refuses_image_items_and_scores_the_others() -> None:
    with make_client(ScriptedEngine()) as client:
        results = score(
            client,
            [
                {"prompt": "p", "response": [image_part(RED)]},
                {"prompt": "p", "response": "text"},
            ],
        )
    assert results[0]["status"] == "invalid_input" and results[0]["reward"] is None
    assert "fake-judge does not take images" in results[0]["error"]
    assert results[1]["status"] == "ok"


def test_malformed_and_oversized_images_are_refused_off_the_loop() -> None:
    with make_client(VisionEngine(), max_image_pixels=100) as client:
        results = score(
            client,
            [
                {"prompt": "p", "response": [image_part(b"\x89PNG\r\n\x1a\n not really")]},
                {"prompt": "p", "response": [image_part(png("red", (20, 20)))]},
                {"prompt": "p", "response": [image_part(RED)]},
            ],
        )
    assert [r["status"] for r in results] == ["invalid_input", "invalid_input", "ok"]
    assert "cannot be" in results[0]["error"]
    assert "20x20 pixels; at most 100" in results[1]["error"]


def test_a_vision_judge_sees_each_items_images_and_keys_differ_by_image(
    client: TestClient, vision: VisionEngine
) -> None:
    items = [
        {"prompt": "Draw red", "response": [image_part(RED)]},
        {"prompt": "Draw red", "response": [image_part(BLUE)]},
    ]
    first = score(client, items)
    assert [r["status"] for r in first] == ["ok", "ok"]
    assert first[0]["reward"] > 0.8 > 0.2 > first[1]["reward"]
    assert vision.seen == [["red"], ["other"]]
    again = score(client, items)  # cached under keys that name the image bytes
    assert [r["cached"] for r in again] == [True, True]
    assert [r["reward"] for r in again] == [r["reward"] for r in first]


def test_group_win_rates_over_image_responses(client: TestClient, vision: VisionEngine) -> None:
    resp = client.post(
        "/v1/score/group",
        json={
            "rubric": "pairwise",
            "prompt": "Draw something red.",
            "responses": [[image_part(BLUE)], [image_part(RED)], [image_part(BLUE)]],
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    rewards = [r["reward"] for r in body["results"]]
    assert rewards[1] > 0.9 and rewards[0] == rewards[2] < 0.5  # a tie with its copy
    identical = [c for c in body["comparisons"] if c["identical"]]
    assert [(c["i"], c["j"]) for c in identical] == [(0, 2)]
    # Both orders of the one distinct pair, each with both images in prompt order.
    assert sorted(map(tuple, vision.seen)) == [("other", "red"), ("red", "other")]


def test_a_group_response_with_a_bad_image_part_is_a_422(client: TestClient) -> None:
    resp = client.post(
        "/v1/score/group",
        json={
            "rubric": "pairwise",
            "prompt": "p",
            "responses": ["a", [{"type": "image_url", "image_url": {"url": "http://x.test/i"}}]],
        },
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["param"] == "responses"


def test_generate_wire_asks_for_every_candidate_and_reads_the_answer_by_token_id() -> None:
    red = ImageData.of(RED)
    payload = {"model": "m", "prompt": [1, 2], "max_tokens": 1, "temperature": 0.0}
    request = generate_wire.generate_request({**payload, "logprob_token_ids": [7, 9]}, [red])
    assert request["token_ids"] == [1, 2]
    assert request["output_mode"] == "tokens"
    sampling = request["sampling_params"]
    assert sampling["logprob_token_ids"] == [7, 9, 9] and sampling["logprobs"] == 3
    (part,) = request["content_parts"]
    assert base64.b64decode(part["url"].split(",", 1)[1]) == RED
    answer = {
        "choices": [
            {
                "index": 0,
                "token_ids": [5],
                "logprobs": {
                    "content": [
                        {
                            "token_id": 5,
                            "logprob": -0.1,
                            "top_logprobs": [
                                {"token_id": 5, "logprob": -0.1},
                                {"token_id": 7, "logprob": -2.0},
                                {"token_id": 9, "logprob": -3.0},
                            ],
                        }
                    ]
                },
            }
        ],
        "usage": {"prompt_tokens": 6, "prompt_tokens_details": {"cached_tokens": 2}},
    }
    completion = generate_wire.as_completion(answer)
    by_id, _ = step_logprobs(first_choice(completion))
    assert by_id == {5: -0.1, 7: -2.0, 9: -3.0}
    assert cached_tokens(completion) == 2
    schema = {"type": "object"}
    text = generate_wire.generate_request(
        {**payload, "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}},
        [red],
    )
    assert text["output_mode"] == "text"
    assert text["sampling_params"]["structured_outputs"] == {"json": schema}


def test_image_urls_are_fetched_only_under_an_allowed_prefix_without_redirects() -> None:
    pages = {
        "/ok.png": httpx.Response(200, content=RED),
        "/big.png": httpx.Response(200, content=b"x" * 500),
        "/moved.png": httpx.Response(302, headers={"location": "https://evil.test/x.png"}),
        "/gone.png": httpx.Response(404),
    }
    transport = httpx.MockTransport(lambda request: pages[request.url.path])
    allowed = "https://img.test/"
    parts = [
        {"type": "image_url", "image_url": {"url": allowed + name}}
        for name in ("ok.png", "big.png", "moved.png", "gone.png")
    ]
    parts.append({"type": "image_url", "image_url": {"url": "https://img.test.evil.org/a.png"}})
    settings = Settings(image_url_prefixes=allowed, max_image_bytes=200)
    fetched = asyncio.run(fetch_images([parts], settings, transport=transport))
    assert set(fetched) == {allowed + n for n in ("ok.png", "big.png", "moved.png", "gone.png")}
    limits = image_limits(settings, fetched)
    reasons = []
    for part in parts:
        item = ScoreItemIn(prompt="p", response=[part]).to_input("0", images=limits)
        reasons.append(getattr(item, "reason", None))
    assert reasons[0] is None
    assert "500 bytes; at most 200" in str(reasons[1])  # its declared length
    assert "redirects are not followed" in str(reasons[2])
    assert "HTTP 404" in str(reasons[3])
    assert "JUDGE_IMAGE_URL_PREFIXES" in str(reasons[4])
    ok = ScoreItemIn(prompt="p", response=[parts[0]]).to_item("0", images=limits)
    assert ok.images == (ImageData.of(RED),)


def test_image_url_prefixes_must_end_with_a_slash() -> None:
    with pytest.raises(ValueError, match="must be"):
        Settings(image_url_prefixes="https://cdn.example")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ASCII text",
        "café 🙂 naïve",  # not ASCII, no slot character
        f"{SLOT_OPEN}",
        f"a{SLOT_CLOSE}b",
        f"é{SLOT_OPEN}{'0' * 64}{SLOT_CLOSE}🙂",
        f"{SLOT_CLOSE}{SLOT_OPEN}",
        "\ue000\ue003\ue004",  # the other private-use characters are not the slot's
    ],
)
def test_without_slots_fast_path_gives_the_full_replacement(text: str) -> None:
    """Text without a slot character is returned as it is, text with one goes through the
    table: either way the result is the table's translation."""
    assert without_slots(text) == text.translate(NO_SLOTS)
    assert SLOT_OPEN not in without_slots(text) and SLOT_CLOSE not in without_slots(text)


def test_the_fast_path_looks_for_every_character_the_table_replaces() -> None:
    assert set(SLOT_CHARS) == {chr(code) for code in NO_SLOTS} == {SLOT_OPEN, SLOT_CLOSE}
