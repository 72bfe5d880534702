"""A completions request with images, sent to vLLM's token-in endpoint and answered in the
completions shape, so the remote engine reads every answer one way.

``POST /v1/completions`` takes token ids but no images. ``vllm serve --enable-scale-out`` adds
``POST /inference/v1/generate`` (vllm/entrypoints/scale_out/token_in_token_out/api_router.py),
whose ``GenerateRequest`` (.../token_in_token_out/protocol.py) takes the same token ids, raw
multimodal ``content_parts`` (``{"type": "image_url", "url": <data URL>}``, resolved by the
server's media connector), and vLLM's own ``SamplingParams`` (``logprob_token_ids``,
``prompt_logprobs``, ``structured_outputs``). ``ServingTokens.serve_tokens``
(.../token_in_token_out/serving.py) wraps the ids in a ``TokensPrompt`` with
``multi_modal_data``, so vLLM expands each image placeholder token exactly as in-process.
In ``output_mode="tokens"`` the answer's logprobs carry integer token ids
(``GenerateLogProb``), read here as the ``token_id:N`` keys of a completions answer.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from judge_server.engines.base import EngineError
from judge_server.engines.completions_wire import TOKEN_ID_PREFIX
from judge_server.engines.images import ImageData

PATH = "/inference/v1/generate"

_SAMPLING = ("max_tokens", "temperature", "stop", "logprob_token_ids", "prompt_logprobs")


def generate_request(payload: dict[str, Any], images: Sequence[ImageData]) -> dict[str, Any]:
    """The token-in request for a completions ``payload`` (token ids in ``prompt``)."""
    sampling = {key: payload[key] for key in _SAMPLING if key in payload}
    if ids := payload.get("logprob_token_ids"):
        # The answer lists the sampled token first, then the requested ones, cut to
        # ``logprobs`` entries (which must equal the number of ids): one id repeated makes room
        # for a sampled token that is not a candidate, so no candidate is cut off
        # (ServingTokens._create_tokens_logprobs; Sampler.gather_specific_token_logprobs).
        sampling["logprob_token_ids"] = [*ids, ids[-1]]
        sampling["logprobs"] = len(ids) + 1
    fmt = payload.get("response_format")
    if isinstance(fmt, dict):
        sampling["structured_outputs"] = {"json": fmt["json_schema"]["schema"]}
    # Pillow reads the bytes whatever the subtype says.
    parts = [
        {"type": "image_url", "url": "data:image/png;base64," + base64.b64encode(i.data).decode()}
        for i in images
    ]
    return {
        "model": payload.get("model"),
        "token_ids": payload["prompt"],
        "content_parts": parts,
        "sampling_params": sampling,
        # Text only where text is read: token ids key the logprobs in "tokens" mode.
        "output_mode": "tokens" if "logprob_token_ids" in payload else "text",
    }


def as_completion(body: dict[str, Any]) -> dict[str, Any]:
    """A generate answer in the completions shape ``completions_wire`` reads."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EngineError("the server's answer has no choices")
    choice = choices[0]
    out: dict[str, Any] = {
        "text": choice.get("text", ""),
        "finish_reason": choice.get("finish_reason"),
        "prompt_logprobs": body.get("prompt_logprobs"),
    }
    content = (choice.get("logprobs") or {}).get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        step = content[0]
        tops = {f"{TOKEN_ID_PREFIX}{t['token_id']}": t["logprob"] for t in step["top_logprobs"]}
        tops.setdefault(f"{TOKEN_ID_PREFIX}{step['token_id']}", step["logprob"])
        out["logprobs"] = {"top_logprobs": [tops]}
    return {"choices": [out], "usage": body.get("usage")}
