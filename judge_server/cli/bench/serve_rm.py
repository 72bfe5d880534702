"""OpenRLHF's reward-model server, re-implemented as the baseline of ``bench --section
rm-vs-serve-rm`` (``python -m judge_server.cli.bench.serve_rm --model FOLDER --port N``).

Read from OpenRLHF at commit 3c3be6234e0cb353e76bb8019947db9dfe99fca7:
``openrlhf/cli/serve_rm.py`` (``RewardModelProxy`` and the ``/get_reward`` route),
``openrlhf/models/model.py`` (``_get_reward_model``: ``RewardModel.forward``) and
``openrlhf/utils/utils.py`` (``get_tokenizer``). Kept as they are there:

- one FastAPI route, ``POST /get_reward``, body ``{"query": [...], ...}``, answering
  ``{"rewards", "scores", "extra_logs": {"dummy_scores"}}``; served by ``uvicorn.run``;
- ``get_reward`` is a plain synchronous call inside the ``async def`` route, so the event loop
  runs one forward at a time: requests are serialised, and a request's queries form one batch
  (``--batch_size`` unset); OpenRLHF's trainer sends one sample per request;
- the tokenizer pads on the left (pad = eos when it has none), ``add_special_tokens=False``,
  truncation at ``max_len`` (2048); the forward computes position ids from the attention mask
  and reads the value head at the last attended token; ``normalize_reward`` off (its default);
- the query and the answer are logged at INFO on every request, as there.

Differences, all forced by this machine: float32 on CPU (OpenRLHF defaults to bf16 on a GPU;
on a CPU without AMX float32 is about 3x faster, and judge-server's vLLM runs float32 there too),
transformers' default attention (no flash-attention on CPU), and the model is loaded with
``AutoModelForSequenceClassification``: for a ``*ForSequenceClassification`` folder with one
label (what ``judge-server build-value-head`` writes) that is the same module OpenRLHF's
``get_llm_for_sequence_regression`` builds, a base model plus a bias-free ``score`` head, with
the same weights. ``GET /openapi.json`` (FastAPI's own) tells the benchmark it is up.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

logger = logging.getLogger("serve_rm")

GetReward = Callable[[list[str]], list[float]]


class RewardModelProxy:
    """``openrlhf/cli/serve_rm.py``'s ``RewardModelProxy`` on a transformers folder."""

    def __init__(self, model_path: str, max_len: int = 2048, batch_size: int | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.reward_model = AutoModelForSequenceClassification.from_pretrained(
            model_path, num_labels=1, dtype=torch.float32
        )
        self.reward_model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_length = max_len
        self.batch_size = batch_size

    def get_reward(self, queries: list[str]) -> list[float]:
        import torch

        batch_size = len(queries) if self.batch_size is None else self.batch_size
        logger.info("queries[0]: %s", queries[0])
        scores: list[float] = []
        with torch.no_grad():
            for i in range(0, len(queries), batch_size):
                inputs = self.tokenize_fn(queries[i : i + batch_size])
                r = openrlhf_forward(
                    self.reward_model, inputs["input_ids"], inputs["attention_mask"]
                )
                scores.extend(r.tolist())
        return scores

    def tokenize_fn(self, texts: list[str]) -> dict[str, Any]:
        return dict(
            self.tokenizer(
                texts,
                return_tensors="pt",
                add_special_tokens=False,
                max_length=self.max_length,
                padding=True,
                truncation=True,
            )
        )


def openrlhf_forward(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """``RewardModel.forward`` of ``openrlhf/models/model.py`` (no packing, no normalisation)
    on a transformers ``*ForSequenceClassification``: its base model and its ``score`` head."""
    eos_indices = (
        attention_mask.size(1) - 1 - attention_mask.long().fliplr().argmax(dim=1, keepdim=True)
    )
    position_ids = attention_mask.long().cumsum(-1) - 1
    position_ids.masked_fill_(attention_mask == 0, 1)
    outputs = getattr(model, model.base_model_prefix)(
        input_ids, attention_mask=attention_mask, position_ids=position_ids
    )
    values = model.score(outputs["last_hidden_state"]).squeeze(-1)
    return values.gather(dim=1, index=eos_indices).squeeze(1)


def create_app(get_reward: GetReward) -> FastAPI:
    """The one route of ``serve_rm.py``, around any ``queries -> rewards`` callable."""
    app = FastAPI()

    @app.post("/get_reward")
    async def route(request: Request) -> JSONResponse:
        data = await request.json()
        queries = data.get("query")
        rewards = get_reward(queries)  # synchronous on purpose: one forward at a time
        result = {"rewards": rewards, "scores": rewards, "extra_logs": {"dummy_scores": rewards}}
        logger.info("Sent JSON: %s", result)
        return JSONResponse(result)

    return app


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a *ForSequenceClassification folder")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--max-len", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    proxy = RewardModelProxy(args.model, args.max_len, args.batch_size)
    uvicorn.run(create_app(proxy.get_reward), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
