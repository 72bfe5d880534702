"""The veRL adapter against an in-process fake judge-server (``_judge_fake``).

veRL's calls are built as verl 0.9.1 makes them: ``get_custom_reward_fn`` wraps the function so
that ``reward_kwargs`` are merged into every call (``_call_with_kwargs``, reward_kwargs win),
``NaiveRewardManager.run_single`` passes ``data_source=, solution_str=, ground_truth=,
extra_info=`` by keyword, ``BatchRewardManager.verify`` passes the plural names.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _judge_fake import MODEL, RETRIES, FakeJudge, install, reward_of, version

import judge_client.integrations.verl as verl
from judge_client import APIConnectionError, InternalServerError
from judge_client.integrations._clients import CLIENTS

URL = "http://judge.test"
KEYS = ["score", "judge_ok", "judge_status", "judge_error", "judge_rubric", "rubric_version",
        "judge_model"]  # fmt: skip


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJudge]:
    yield from install(monkeypatch)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", URL)
    monkeypatch.setenv("JUDGE_RUBRIC", "helpfulness")


def _call_with_kwargs(raw_fn: Callable[..., Any], extra: dict[str, Any], *a: Any, **kw: Any) -> Any:
    """``verl/trainer/ppo/reward.py`` ``_call_with_kwargs``: reward_kwargs take precedence."""
    return raw_fn(*a, **{**kw, **extra})


def as_verl_loads(fn: Callable[..., Any], **reward_kwargs: Any) -> Callable[..., Any]:
    """What ``get_custom_reward_fn`` returns for ``fn`` with these ``reward_kwargs``."""
    return partial(_call_with_kwargs, fn, reward_kwargs)


def naive_call(fn: Callable[..., Any], solution: str, ground_truth: Any, extra_info: Any) -> Any:
    """``NaiveRewardManager.run_single``: keywords only, plus the two keys it adds to extra_info."""
    extra_info = dict(extra_info)
    extra_info["num_turns"] = None
    extra_info["rollout_reward_scores"] = {}
    return fn(
        data_source="openai/gsm8k",
        solution_str=solution,
        ground_truth=ground_truth,
        extra_info=extra_info,
    )


# -- the mapping of veRL's arguments -----------------------------------------------------


def test_one_sample_is_judged_and_reported_with_every_key(fake: FakeJudge, env: None) -> None:
    out = naive_call(verl.compute_score, "Paris.", "Paris", {"question": "Capital of France?"})
    assert out == {
        "score": reward_of("Paris."),
        "judge_ok": 1.0,
        "judge_status": "ok",
        "judge_error": "",
        "judge_rubric": "helpfulness",
        "rubric_version": version("helpfulness"),
        "judge_model": MODEL,
    }
    assert list(out) == KEYS
    (body,) = fake.bodies
    assert body["rubric"] == "helpfulness"
    assert body["items"] == [
        {"id": "0", "prompt": "Capital of France?", "response": "Paris.", "reference": "Paris"}
    ]
    assert str(fake.requests[0].url) == f"{URL}/v1/score"


@pytest.mark.parametrize(
    ("ground_truth", "reference"),
    [
        ("72", "72"),
        (72, "72"),
        (np.int64(3), "3"),
        (np.array(["a", "b"]), '["a", "b"]'),
        ({"answer": "x"}, '{"answer": "x"}'),
        (None, None),
        ("", None),
    ],
)
def test_ground_truth_is_the_reference(
    fake: FakeJudge, env: None, ground_truth: Any, reference: str | None
) -> None:
    naive_call(verl.compute_score, "resp", ground_truth, {"question": "q"})
    assert fake.items[0].get("reference") == reference


def test_a_chat_prompt_from_parquet_is_sent_as_messages(fake: FakeJudge, env: None) -> None:
    # parquet gives lists back as numpy object arrays
    chat = np.array(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
        dtype=object,
    )
    naive_call(verl.compute_score, "Hello.", None, {"question": chat})
    assert fake.items[0]["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
    ]


def test_the_prompt_key_is_configurable(fake: FakeJudge, env: None) -> None:
    fn = as_verl_loads(verl.compute_score, judge_prompt_key="prompt_text")
    naive_call(fn, "r", None, {"prompt_text": "from here", "question": "not this"})
    assert fake.items[0]["prompt"] == "from here"


def test_a_row_without_the_prompt_raises_and_sends_nothing(fake: FakeJudge, env: None) -> None:
    with pytest.raises(ValueError, match=r"extra_info has no 'question'.*judge_prompt_key"):
        naive_call(verl.compute_score, "r", None, {"index": 3})
    with pytest.raises(ValueError, match="extra_info has no 'question'"):
        verl.compute_score("ds", "r", None)  # extra_info=None
    assert fake.requests == []


def test_the_reward_model_kwargs_verl_adds_are_accepted(fake: FakeJudge, env: None) -> None:
    out = verl.compute_score(
        data_source="ds",
        solution_str="r",
        ground_truth=None,
        extra_info={"question": "q"},
        reward_router_address="127.0.0.1:1",
        reward_model_tokenizer=object(),
    )
    assert out["judge_ok"] == 1.0


def test_a_misspelt_setting_raises(fake: FakeJudge, env: None) -> None:
    fn = as_verl_loads(verl.compute_score, judge_rubrik="correctness")
    with pytest.raises(TypeError, match=r"judge_rubrik"):
        naive_call(fn, "r", None, {"question": "q"})


# -- settings: environment < reward_kwargs < extra_info ------------------------------------


def test_settings_come_from_the_environment(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", "http://env-judge:1")
    monkeypatch.setenv("JUDGE_RUBRIC", "correctness")
    monkeypatch.setenv("JUDGE_API_KEY", "env-key")
    naive_call(verl.compute_score, "r", "a", {"question": "q"})
    (request,) = fake.requests
    assert str(request.url) == "http://env-judge:1/v1/score"
    assert request.headers["authorization"] == "Bearer env-key"
    assert fake.bodies[0]["rubric"] == "correctness"


def test_reward_kwargs_override_the_environment(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", "http://env-judge:1")
    monkeypatch.setenv("JUDGE_RUBRIC", "correctness")
    monkeypatch.setenv("JUDGE_API_KEY", "env-key")
    fn = as_verl_loads(
        verl.compute_score,
        judge_server_url="http://kw-judge:2",
        judge_rubric="helpfulness@abc",
        judge_api_key="kw-key",
    )
    out = naive_call(fn, "r", None, {"question": "q"})
    (request,) = fake.requests
    assert str(request.url) == "http://kw-judge:2/v1/score"
    assert request.headers["authorization"] == "Bearer kw-key"
    assert fake.bodies[0]["rubric"] == "helpfulness@abc"
    assert out["judge_rubric"] == "helpfulness"


def test_extra_info_overrides_rubric_and_server_per_sample(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", "http://env-judge:1")
    fn = as_verl_loads(verl.compute_score, judge_rubric="helpfulness")
    info = {"question": "q", "judge_rubric": "correctness", "judge_server_url": "http://row:3"}
    naive_call(fn, "r", "a", info)
    naive_call(fn, "r", "a", {"question": "q", "judge_rubric": ""})  # empty: not an override
    first, second = fake.requests
    assert str(first.url) == "http://row:3/v1/score"
    assert fake.bodies[0]["rubric"] == "correctness"
    assert str(second.url) == "http://env-judge:1/v1/score"
    assert fake.bodies[1]["rubric"] == "helpfulness"


def test_no_rubric_anywhere_is_a_clear_error(
    fake: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_SERVER_URL", URL)
    with pytest.raises(ValueError, match=r"no judge_rubric.*JUDGE_RUBRIC"):
        naive_call(verl.compute_score, "r", None, {"question": "q"})
    monkeypatch.delenv("JUDGE_SERVER_URL")
    monkeypatch.setenv("JUDGE_RUBRIC", "helpfulness")
    with pytest.raises(ValueError, match=r"no judge_server_url.*JUDGE_SERVER_URL"):
        naive_call(verl.compute_score, "r", None, {"question": "q"})


# -- failures: flagged fill value; a server that is down raises ---------------------------


def test_a_failed_item_gets_the_fill_value_and_is_flagged(fake: FakeJudge, env: None) -> None:
    out = naive_call(verl.compute_score, "FAIL", None, {"question": "q"})
    assert out["score"] == 0.0
    assert out["judge_ok"] == 0.0
    assert out["judge_status"] == "judge_error"
    assert out["judge_error"] == "boom"
    assert out["rubric_version"] == version("helpfulness")
    assert list(out) == KEYS


def test_the_fill_value_is_configurable(
    fake: FakeJudge, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_FILL_VALUE", "-1")
    assert naive_call(verl.compute_score, "FAIL", None, {"question": "q"})["score"] == -1.0
    fn = as_verl_loads(verl.compute_score, judge_fill_value=0.25)
    assert naive_call(fn, "FAIL", None, {"question": "q"})["score"] == 0.25


def test_an_item_the_client_cannot_send_fails_alone(fake: FakeJudge, env: None) -> None:
    no_role = [{"content": "a message without a role"}]
    outs = verl.compute_score_batch(
        data_sources=["ds", "ds"],
        solution_strs=["ok answer", "r"],
        ground_truths=[None, None],
        extra_infos=[{"question": "q"}, {"question": no_role}],
    )
    assert outs[0]["judge_ok"] == 1.0
    assert outs[1]["judge_ok"] == 0.0
    assert outs[1]["judge_status"] == "invalid_input"
    assert outs[1]["judge_error"].startswith("not sent:")
    assert outs[1]["rubric_version"] == ""
    assert list(outs[1]) == KEYS
    assert len(fake.items) == 1


def test_a_server_that_is_down_raises_after_the_retries(fake: FakeJudge, env: None) -> None:
    fake.down = True
    with pytest.raises(APIConnectionError):
        naive_call(verl.compute_score, "r", None, {"question": "q"})
    assert len(fake.requests) == RETRIES + 1
    fake.down, fake.status = False, 503
    with pytest.raises(InternalServerError):
        verl.compute_score_batch(["ds"], ["r"], [None], [{"question": "q"}])
    with pytest.raises(InternalServerError):
        asyncio.run(verl.compute_score_async("ds", "r", None, {"question": "q"}))


# -- the async and batch forms -------------------------------------------------------------


def test_the_async_form_is_a_coroutine_function_with_the_same_result(
    fake: FakeJudge, env: None
) -> None:
    # NaiveRewardManager: is_async_reward_score = inspect.iscoroutinefunction(compute_score),
    # on the function get_custom_reward_fn returns (it wraps async functions with an async
    # _call_with_kwargs_async), so the raw function must be one.
    assert inspect.iscoroutinefunction(verl.compute_score_async)
    assert not inspect.iscoroutinefunction(verl.compute_score)
    sync = naive_call(verl.compute_score, "Paris.", "Paris", {"question": "q"})
    out = asyncio.run(
        verl.compute_score_async(
            data_source="ds",
            solution_str="Paris.",
            ground_truth="Paris",
            extra_info={"question": "q"},
        )
    )
    assert out == sync
    assert fake.items[0] == fake.items[1]


def test_the_batch_form_is_one_request_in_order(fake: FakeJudge, env: None) -> None:
    n = 5
    solutions = [f"answer {'x' * i}" for i in range(n)] + ["FAIL"]
    outs = verl.compute_score_batch(
        data_sources=np.array(["ds"] * (n + 1), dtype=object),
        solution_strs=solutions,
        ground_truths=[str(i) for i in range(n + 1)],
        extra_infos=np.array([{"question": f"q{i}"} for i in range(n + 1)], dtype=object),
    )
    assert len(fake.requests) == 1
    assert [o["score"] for o in outs] == [reward_of(s) for s in solutions[:n]] + [0.0]
    assert [o["judge_status"] for o in outs] == ["ok"] * n + ["judge_error"]
    assert [i["prompt"] for i in fake.items] == [f"q{i}" for i in range(n + 1)]
    assert [i["reference"] for i in fake.items] == [str(i) for i in range(n + 1)]


def test_the_batch_form_sends_one_request_per_rubric(fake: FakeJudge, env: None) -> None:
    infos = [{"question": "a"}, {"question": "b", "judge_rubric": "correctness"}, {"question": "c"}]
    outs = verl.compute_score_batch(["d"] * 3, ["1", "2", "3"], ["x"] * 3, infos)
    assert [b["rubric"] for b in fake.bodies] == ["helpfulness", "correctness"]
    assert [o["judge_rubric"] for o in outs] == ["helpfulness", "correctness", "helpfulness"]


def test_the_batch_form_rejects_lists_of_different_lengths(fake: FakeJudge, env: None) -> None:
    with pytest.raises(ValueError, match="batch lengths differ"):
        verl.compute_score_batch(["d"], ["1", "2"], [None, None], [{}, {}])


def test_batch_extra_info_becomes_typed_numpy_columns(fake: FakeJudge, env: None) -> None:
    """``RewardLoopManager.compute_rm_score`` builds ``np.array([info[key] ...])`` per key of
    the first sample: every sample has every key, numbers stay numbers, text stays text."""
    outs = verl.compute_score_batch(
        ["d"] * 3, ["ok", "FAIL", "fine"], [None] * 3, [{"question": "q"}] * 3
    )
    columns = {key: np.array([o[key] for o in outs]) for key in outs[0]}
    assert columns["score"].dtype == np.float64
    assert columns["judge_ok"].dtype == np.float64
    assert columns["judge_ok"].mean() == pytest.approx(2 / 3)
    for key in ("judge_status", "judge_error", "judge_rubric", "rubric_version", "judge_model"):
        assert columns[key].dtype.kind == "U", key


# -- clients: one per (url, key) per process, thread-safe --------------------------------


def test_one_client_per_server_and_key_across_threads(
    fake: FakeJudge, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[str, str | None]] = []
    factory = CLIENTS.sync_factory
    lock = threading.Lock()

    def counting(url: str, key: str | None) -> Any:
        with lock:
            made.append((url, key))
        return factory(url, key)

    monkeypatch.setattr(CLIENTS, "sync_factory", counting)
    with ThreadPoolExecutor(8) as pool:  # NaiveRewardManager's run_in_executor(None, ...)
        outs = list(
            pool.map(lambda i: naive_call(verl.compute_score, "r" * i, None, {"question": "q"}),
                     range(32))
        )  # fmt: skip
    assert [o["score"] for o in outs] == [reward_of("r" * i) for i in range(32)]
    fn = as_verl_loads(verl.compute_score, judge_api_key="other")
    naive_call(fn, "r", None, {"question": "q"})
    assert made == [(URL, None), (URL, "other")]


def test_the_async_form_reuses_its_loops_client(fake: FakeJudge, env: None) -> None:
    async def run() -> set[int]:
        await asyncio.gather(
            *(verl.compute_score_async("d", "r", None, {"question": "q"}) for _ in range(4))
        )
        return {id(CLIENTS.async_client(URL, None))}

    assert len(asyncio.run(run())) == 1
    assert len(fake.requests) == 4


def test_the_file_loads_by_path_as_verl_loads_it(fake: FakeJudge, env: None) -> None:
    """``verl/utils/import_utils.py`` ``load_module``: ``spec_from_file_location`` under a
    made-up name, outside the package, so the module must not use relative imports."""
    path = Path(verl.__file__)
    spec = importlib.util.spec_from_file_location(f"custom_module_{hash(str(path))}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = naive_call(module.compute_score, "r", None, {"question": "q"})
    assert out["judge_ok"] == 1.0


def test_a_samples_own_criteria_travel_in_extra_info(fake: FakeJudge, env: None) -> None:
    # HealthBench rows keep their criteria under "rubrics"; parquet gives them back as arrays
    criteria = [{"criterion": "Says Paris", "points": 5, "tags": ["axis:accuracy"]}]
    stored = np.array([dict(criteria[0], tags=np.array(["axis:accuracy"]))], dtype=object)
    naive_call(verl.compute_score, "Paris.", None, {"question": "Capital?", "rubrics": stored})
    naive_call(verl.compute_score, "Paris.", None, {"question": "Capital?"})
    with_criteria, without = fake.items
    assert with_criteria["rubrics"] == criteria
    assert "rubrics" not in without


def test_a_samples_persona_travels_in_extra_info(fake: FakeJudge, env: None) -> None:
    # parquet gives strings back as numpy strings
    persona = np.str_("venting")
    naive_call(verl.compute_score, "r", None, {"question": "q", "persona": persona})
    naive_call(verl.compute_score, "r", None, {"question": "q"})
    with_persona, without = fake.items
    assert with_persona["metadata"] == {"persona": "venting"}
    assert "metadata" not in without
