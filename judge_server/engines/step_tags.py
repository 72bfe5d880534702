"""Step-tag prompts for process reward models: a step tag after every step, placed as a token.

A step-tag PRM (Qwen2.5-Math-PRM: ``<extra_0>``; Math-Shepherd: ``ки``) reads one score at each
position holding the tag token, so the tag's positions decide how many steps are scored. The
tag is therefore never text: each step is encoded as plain text (``PlainTextTokenizer``, so a
response holding the tag's string cannot make the tag's special token) and the tag's id is put
after it by the adapter. Where the tag is an ordinary token that a step's text can still
produce, vLLM's STEP pooling returns a row for that position as well: ``rows_at_tags`` keeps the
rows of the tags placed here only, so a response cannot add steps either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from judge_server.engines.base import ChatMessage, EngineError
from judge_server.engines.plain_text import PlainTextTokenizer

#: Architectures served as process reward models: vLLM's ``Qwen2ForProcessRewardModel``
#: (vllm/model_executor/models/qwen2_rm.py, STEP pooling by default) and any token classifier
#: (a ``*ForTokenClassification`` causal LM: vllm/model_executor/models/adapters.py,
#: ``as_seq_cls_model``, whose ``token_classify`` pooler takes the STEP method too).
PROCESS_ARCHITECTURES = ("ForProcessRewardModel", "ForTokenClassification")

#: Stands for the assistant's turn while the chat template renders; replaced by the steps.
SLOT = "\ue003"  # its own: images.py uses \ue001-\ue002, plain_text.MARK \ue000


def is_process_reward_model(path: str) -> bool:
    """Whether the model at ``path`` (folder or hub id: its config.json only) scores steps.

    Such a model's engine gets STEP token pooling; only such a model's, because STEP turns off
    vLLM's prefix cache for the whole engine (vllm/config/model.py,
    ``is_prefix_caching_supported``), which a scalar model's reference call shares."""
    from transformers import PretrainedConfig

    archs = PretrainedConfig.get_config_dict(path)[0].get("architectures") or []
    return any(str(a).endswith(PROCESS_ARCHITECTURES) for a in archs)


def tagged(
    tokenizer: PlainTextTokenizer,
    messages: Sequence[ChatMessage],
    steps: Sequence[str],
    tag_id: int,
) -> tuple[list[int], list[int]]:
    """Token ids of the conversation whose last (assistant) turn is ``step TAG step TAG ...``,
    rendered with the model's chat template, and the positions of the tags placed here."""
    rendered = tokenizer.render(
        [*messages, {"role": "assistant", "content": SLOT}], add_generation_prompt=False
    )
    # The last slot is the assistant's: only the template's own closing text follows it.
    head, found, tail = rendered.rpartition(SLOT)
    if not found:
        raise EngineError("the chat template dropped the assistant's turn")
    tokens = tokenizer.encode(head)
    tags: list[int] = []
    for step in steps:
        tokens += tokenizer.encode_text(step)
        tags.append(len(tokens))
        tokens.append(tag_id)
    return tokens + tokenizer.encode(tail), tags


def rows_at_tags(
    tokens: Sequence[int], tags: Sequence[int], tag_id: int, rows: Sequence[Sequence[float]]
) -> list[list[float]]:
    """The rows of ``tags`` among STEP pooling's rows, one per position holding ``tag_id``."""
    every = [i for i, t in enumerate(tokens) if t == tag_id]
    if len(rows) != len(every):
        raise EngineError(f"{len(rows)} step rows for {len(every)} step-tag tokens")
    ours = set(tags)
    return [list(row) for pos, row in zip(every, rows, strict=True) if pos in ours]
