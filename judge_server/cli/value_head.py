"""Build a small sequence-classification reward model: a causal LM plus a seeded value head.

Its rewards mean nothing (the head is random); it exists so that reward_model mode can be tried
and tested offline with the embedded model, exactly as a real Bradley-Terry reward model (the
Skywork-Reward-V2 kind, ``*ForSequenceClassification`` with one label) would be served::

    judge-server build-value-head OUT_DIR        # from the embedded model
    judge-server serve --reward-model toy=OUT_DIR

With ``--prm`` it builds a process reward model instead: a two-label token-classification head
(``*ForTokenClassification``, served with vLLM's STEP pooling as Qwen2.5-Math-PRM is), read at
a step tag after each step. The embedded model has no spare token like ``<extra_0>``, so its
step tag is ``PRM_STEP_TAG``, an added token chat templates never write.
"""

from __future__ import annotations

import math
from pathlib import Path

from judge_server.settings import Settings

#: The seeded PRM's step tag: one added token of the embedded SmolLM2's vocabulary.
PRM_STEP_TAG = "<file_sep>"


def build_value_head_model(
    base_folder: Path, out: Path, seed: int = 0, *, process: bool = False
) -> Path:
    """Save ``base_folder``'s model with a one-label ``score`` head (seeded) to ``out``; with
    ``process``, a two-label per-token head (a process reward model) instead."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    auto = AutoModelForTokenClassification if process else AutoModelForSequenceClassification
    model = auto.from_pretrained(base_folder, num_labels=2 if process else 1, dtype=torch.float32)
    hidden = int(model.config.hidden_size)
    generator = torch.Generator().manual_seed(seed)
    head = model.score.weight
    with torch.no_grad():
        head.copy_(torch.randn(head.shape, generator=generator) / math.sqrt(hidden))
        if model.score.bias is not None:  # the token classifier's head has one
            model.score.bias.zero_()
    # transformers pools the last token that is not padding; a pad id that never occurs in a
    # rendered chat (unk) makes that the last token, which is what vLLM's LAST pooling reads.
    pad = tokenizer.unk_token_id
    if pad is None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.config.pad_token_id = int(pad)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_command(
    settings: Settings, out: Path, base: Path | None, seed: int, *, process: bool = False
) -> int:
    """``judge-server build-value-head OUT [--prm]``: from ``--base`` or the embedded model."""
    from judge_server.engines.model_store import resolve_model

    folder = base or Path(resolve_model(None, settings.cache_dir)[0])
    print(build_value_head_model(folder, out, seed, process=process))
    return 0
