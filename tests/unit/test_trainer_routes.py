"""Trainer dialect routes (/get_reward for OpenRLHF, /slime/reward for slime) and per-item
handling of chat messages, on the scripted engine. The same routes run against the real engine
and the trainers' own request code in tests/integration/test_trainer_routes_live.py."""

from collections.abc import Iterator, Sequence

import pytest
from fastapi.testclient import TestClient

from judge_server.api import create_app
from judge_server.api.routes_openrlhf import strip_eos
from judge_server.api.templated_prompt import chat_messages
from judge_server.judges import InvalidItemError
from judge_server.judges.conversation import chat_turns
from judge_server.settings import Settings, project_rubrics_dir
from tests.fakes import ScriptedEngine
from tests.unit.test_api import assert_envelope

PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"


def script(prompt: str, candidates: Sequence[str]) -> dict[str, float]:
    # a confident 9 for the word "four", a confident 1 otherwise; "ENGINE-FAIL" fails the item
    top = "9" if "four" in prompt else "1"
    return {c: (0.99 if c == top else 0.01 / (len(candidates) - 1)) for c in candidates}


def make_client(**settings: object) -> TestClient:
    engine = ScriptedEngine(script, max_model_len=3000)
    app = create_app(Settings(rubrics_dir=project_rubrics_dir(), **settings), engine)  # type: ignore[arg-type]
    return TestClient(app)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client() as c:
        yield c


def metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- chat messages as trainers send them -----------------------------------------------------


def test_chat_turns_keep_text_of_every_template_role() -> None:
    turns = chat_turns(
        [
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "weather"}, {"type": "text", "text": "?"}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"type": "function", "function": {"name": "get", "arguments": {"q": "x"}}}
                ],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "1"},
        ]
    )
    assert [t["role"] for t in turns] == ["developer", "user", "assistant", "tool"]
    assert turns[1]["content"] == "weather?"
    assert turns[2]["content"] == '[tool call] get({"q": "x"})'
    assert turns[3]["content"] == "sunny"


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({"role": "narrator", "content": "x"}, "role 'narrator'"),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
            "'image_url'",
        ),
        ({"role": "assistant", "content": "", "tool_calls": "nope"}, "tool_calls"),
    ],
)
def test_chat_turns_refuse_what_cannot_be_judged_as_text(
    message: dict[str, object], says: str
) -> None:
    with pytest.raises(InvalidItemError, match=says):
        chat_turns([message])


def test_an_item_the_judge_cannot_read_fails_alone(client: TestClient) -> None:
    good = {"id": "good", "prompt": [{"role": "tool", "content": "42"}], "response": "four"}
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    bad = {"id": "bad", "prompt": image, "response": "four"}
    odd_role = {"id": "odd", "prompt": [{"role": "narrator", "content": "hi"}], "response": "x"}
    resp = client.post("/v1/score", json={"rubric": "helpfulness", "items": [good, bad, odd_role]})
    assert resp.status_code == 200, resp.text
    results = {r["id"]: r for r in resp.json()["results"]}
    assert results["good"]["status"] == "ok" and results["good"]["reward"] > 0.9
    for rid in ("bad", "odd"):
        assert results[rid]["status"] == "invalid_input" and results[rid]["reward"] is None
    assert "image_url" in results["bad"]["error"] and "narrator" in results["odd"]["error"]
    assert (
        metric(
            client,
            'judge_items_total{mode="pointwise",rubric="helpfulness",status="invalid_input"}',
        )
        == 2
    )


def test_a_group_prompt_the_judge_cannot_read_is_a_422(client: TestClient) -> None:
    body = {
        "rubric": "pairwise",
        "prompt": [{"role": "narrator", "content": "x"}],
        "responses": ["a", "b"],
    }
    assert_envelope(client.post("/v1/score/group", json=body), 422, "invalid_request", "prompt")


# -- OpenRLHF: POST /get_reward ---------------------------------------------------------------


def test_strip_eos_removes_only_a_trailing_run_of_markers() -> None:
    assert strip_eos("four<|im_end|>") == "four"
    assert strip_eos("four</s><|endoftext|>") == "four"
    assert strip_eos("<|im_end|> four") == "<|im_end|> four"


def test_get_reward_answers_openrlhf_shape_from_query_minus_prompt(client: TestClient) -> None:
    body = {"query": [PROMPT + "It is four.<|im_end|>"], "prompts": [PROMPT], "labels": ["4"]}
    resp = client.post("/get_reward?rubric=helpfulness", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["rewards"] == out["scores"] and len(out["rewards"]) == 1
    assert out["rewards"][0] > 0.9
    assert out["extra_logs"] == {"judge_ok": [1.0]}
    assert out["rubric"]["name"] == "helpfulness" and len(out["rubric"]["version"]) == 12
    assert out["model"] == "fake-judge" and out["statuses"] == ["ok"]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (PROMPT, [{"role": "user", "content": "What is 2+2?"}]),
        (
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n",
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "2+2?"},
            ],
        ),
        (
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            [{"role": "user", "content": "Hi"}],
        ),
        (
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n"
            "<start_of_turn>model\n",
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
        ),
        ("Question: what is 2+2?\nAnswer:", "Question: what is 2+2?\nAnswer:"),
        (
            "text before <|im_start|>user\nHi<|im_end|>\n",
            "text before <|im_start|>user\nHi<|im_end|>\n",
        ),
        (
            "<|im_start|>user\nunclosed <|im_start|>assistant\n",
            "<|im_start|>user\nunclosed <|im_start|>assistant\n",
        ),
    ],
)
def test_templated_prompts_are_read_back_into_messages(prompt: str, expected: object) -> None:
    assert chat_messages(prompt) == expected


def test_get_reward_judges_the_response_without_prompt_or_eos() -> None:
    engine = ScriptedEngine(script, max_model_len=3000)
    app = create_app(Settings(rubrics_dir=project_rubrics_dir()), engine)
    with TestClient(app) as c:
        body = {
            "query": [PROMPT + "RESPONSE-TEXT<|im_end|>"],
            "prompts": [PROMPT],
            "labels": [None],
        }
        assert c.post("/get_reward?rubric=helpfulness", json=body).status_code == 200
    judged = engine.prompts[-1]
    assert "RESPONSE-TEXT" in judged and "RESPONSE-TEXT<|im_end|>" not in judged
    # the prompt was read back into messages: the judge sees a transcript, not template markup
    assert "User: What is 2+2?" in judged and "<|im_start|>" not in judged


def test_get_reward_fills_a_failed_item_flags_it_and_counts_it(client: TestClient) -> None:
    body = {
        "query": [PROMPT + "four", PROMPT + "ENGINE-FAIL"],
        "prompts": [PROMPT, PROMPT],
        "labels": ["4", "4"],
    }
    out = client.post("/get_reward?rubric=helpfulness&fill_value=-1", json=body).json()
    assert out["rewards"][1] == -1.0 and out["rewards"][0] > 0.9
    assert out["extra_logs"]["judge_ok"] == [1.0, 0.0]
    assert out["statuses"] == ["ok", "judge_error"] and "scripted" in out["errors"][1]
    counted = 'judge_trainer_failures_total{action="fill",dialect="openrlhf",status="judge_error"}'
    assert metric(client, counted) == 1


def test_get_reward_error_policy_answers_503_the_trainer_retries(client: TestClient) -> None:
    body = {"query": [PROMPT + "ENGINE-FAIL"], "prompts": [PROMPT]}
    resp = client.post("/get_reward?rubric=helpfulness&on_failure=error", json=body)
    assert_envelope(resp, 503, "judge_failed")
    assert resp.headers["retry-after"]
    counted = 'judge_trainer_failures_total{action="error",dialect="openrlhf",status="judge_error"}'
    assert metric(client, counted) == 1


@pytest.mark.parametrize(
    ("query", "body_extra", "status", "type_", "param"),
    [
        (
            "/get_reward?rubric=helpfulness",
            {"prompts": [PROMPT, PROMPT]},
            422,
            "invalid_request",
            "prompts",
        ),
        (
            "/get_reward?rubric=helpfulness",
            {"labels": ["a", "b"]},
            422,
            "invalid_request",
            "labels",
        ),
        (
            "/get_reward?rubric=helpfulness",
            {"prompts": ["another prompt"]},
            422,
            "invalid_request",
            "query.0",
        ),
        ("/get_reward?rubric=nope", {}, 404, "rubric_not_found", "rubric"),
        ("/get_reward", {}, 422, "invalid_request", "rubric"),
        ("/get_reward?rubric=helpfulness&on_failure=maybe", {}, 422, "invalid_request", None),
    ],
)
def test_get_reward_refuses_bad_requests_in_the_envelope(
    client: TestClient,
    query: str,
    body_extra: dict[str, object],
    status: int,
    type_: str,
    param: str | None,
) -> None:
    body = {"query": [PROMPT + "four"], "prompts": [PROMPT], **body_extra}
    assert_envelope(client.post(query, json=body), status, type_, param)


def test_trainer_rubric_setting_is_the_default_rubric() -> None:
    with make_client(trainer_rubric="correctness") as c:
        body = {"query": [PROMPT + "four"], "prompts": [PROMPT], "labels": ["4"]}
        assert c.post("/get_reward", json=body).json()["rubric"]["name"] == "correctness"


# -- slime: POST /slime/reward ----------------------------------------------------------------


def test_slime_reward_is_a_flat_object_with_a_numeric_reward(client: TestClient) -> None:
    body = {"prompt": "What is 2+2?", "response": "four", "label": 4}
    out = client.post("/slime/reward?rubric=helpfulness", json=body).json()
    assert out["reward"] > 0.9 and out["ok"] is True and out["status"] == "ok"
    assert out["rubric"] == "helpfulness" and len(out["rubric_version"]) == 12
    assert out["model"] == "fake-judge" and out["error"] is None


def test_slime_reward_takes_chat_prompts_and_fills_unreadable_ones(client: TestClient) -> None:
    body = {"prompt": [{"role": "narrator", "content": "hi"}], "response": "four", "label": None}
    out = client.post("/slime/reward?rubric=helpfulness", json=body).json()
    assert out == {**out, "reward": 0.0, "ok": False, "status": "invalid_input"}
    resp = client.post("/slime/reward?rubric=helpfulness&on_failure=error", json=body)
    assert_envelope(resp, 422, "invalid_input")  # the same input would fail the same way


def test_slime_reward_missing_response_is_a_422(client: TestClient) -> None:
    resp = client.post("/slime/reward?rubric=helpfulness", json={"prompt": "x"})
    assert_envelope(resp, 422, "invalid_request", "response")


def test_get_reward_answers_an_empty_shard(client: TestClient) -> None:
    # OpenRLHF splits one sample over every URL of --reward.remote_url: the others get nothing
    out = client.post(
        "/get_reward?rubric=helpfulness", json={"query": [], "prompts": [], "labels": []}
    )
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["rewards"] == [] and body["scores"] == [] and body["extra_logs"] == {"judge_ok": []}


def test_trainer_routes_refuse_a_pairwise_rubric(client: TestClient) -> None:
    body = {"query": [PROMPT + "four"], "prompts": [PROMPT]}
    assert_envelope(
        client.post("/get_reward?rubric=pairwise", json=body), 422, "invalid_rubric", "rubric"
    )
    slime = {"prompt": "q", "response": "four"}
    assert_envelope(
        client.post("/slime/reward?rubric=pairwise", json=slime), 422, "invalid_rubric", "rubric"
    )


def test_labels_of_any_json_type_become_the_reference() -> None:
    engine = ScriptedEngine(script, max_model_len=3000)
    app = create_app(Settings(rubrics_dir=project_rubrics_dir()), engine)
    with TestClient(app) as c:
        slime = {"prompt": "q", "response": "four", "label": {"answer": 4, "unit": None}}
        assert c.post("/slime/reward?rubric=correctness", json=slime).json()["ok"] is True
        assert '{"answer": 4, "unit": null}' in engine.prompts[-1]
        body = {"query": [PROMPT + "four"], "prompts": [PROMPT], "labels": [[4, "four"]]}
        assert c.post("/get_reward?rubric=correctness", json=body).json()["statuses"] == ["ok"]
        assert '[4, "four"]' in engine.prompts[-1]


def test_slime_reads_a_chat_templated_prompt_back_into_messages() -> None:
    engine = ScriptedEngine(script, max_model_len=3000)
    app = create_app(Settings(rubrics_dir=project_rubrics_dir()), engine)
    with TestClient(app) as c:
        body = {"prompt": PROMPT, "response": "four", "label": "4"}
        assert c.post("/slime/reward?rubric=helpfulness", json=body).json()["ok"] is True
    assert "User: What is 2+2?" in engine.prompts[-1] and "<|im_start|>" not in engine.prompts[-1]


def test_an_empty_conversation_is_invalid_input(client: TestClient) -> None:
    resp = client.post(
        "/v1/score", json={"rubric": "helpfulness", "items": [{"prompt": [], "response": "x"}]}
    )
    result = resp.json()["results"][0]
    assert result["status"] == "invalid_input" and "no messages" in result["error"]


# -- process rubrics: the aggregate is the reward, the steps ride along -----------------------


def test_trainer_routes_reward_a_process_rubric_by_its_aggregate() -> None:
    def by_step(prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        p_yes = 0.3 if "Is step [2]" in prompt else 0.9  # step 2 is the weakest
        return {"Yes": p_yes, "No": 1 - p_yes} if "Yes" in candidates else {}

    app = create_app(
        Settings(rubrics_dir=project_rubrics_dir()),
        ScriptedEngine(by_step, max_model_len=3000),  # type: ignore[arg-type]
    )
    steps = "1. 2 + 2 = 4\n2. 4 x 1 = 4\n3. The answer is 4."
    with TestClient(app) as c:
        body = {"query": [PROMPT + steps, PROMPT + "four"], "prompts": [PROMPT, PROMPT]}
        out = c.post("/get_reward?rubric=step_correctness", json=body).json()
        assert out["rewards"] == pytest.approx([0.3, 0.9])  # the min over the steps
        assert out["step_scores"] == [pytest.approx([0.9, 0.3, 0.9]), pytest.approx([0.9])]
        assert out["extra_logs"] == {"judge_ok": [1.0, 1.0]}
        slime = c.post(
            "/slime/reward?rubric=step_correctness", json={"prompt": "q", "response": steps}
        ).json()
        assert slime["reward"] == pytest.approx(0.3)
        assert slime["step_scores"] == pytest.approx([0.9, 0.3, 0.9])
        # No steps: the fill value, flagged, and no step scores.
        empty = c.post(
            "/slime/reward?rubric=step_correctness", json={"prompt": "q", "response": " "}
        ).json()
        assert (empty["ok"], empty["status"], empty["step_scores"]) == (
            False,
            "invalid_input",
            None,
        )
        other = c.post(
            "/slime/reward?rubric=correctness", json={"prompt": "q", "response": "4", "label": "4"}
        ).json()
        assert other["step_scores"] is None
        # A group of responses is ranked by pairwise comparisons: a process rubric is refused
        # there, in the envelope, and scores a group through /v1/score instead.
        group = {"rubric": "step_correctness", "prompt": "q", "responses": [steps, steps]}
        assert_envelope(c.post("/v1/score/group", json=group), 422, "invalid_rubric", "rubric")
