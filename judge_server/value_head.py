"""Build a small sequence-classification reward model: a causal LM plus a seeded value head.

Its rewards mean nothing (the head is random); it exists so that reward_model mode can be tried
and tested offline with the embedded model, exactly as a real Bradley-Terry reward model (the
Skywork-Reward-V2 kind, ``*ForSequenceClassification`` with one label) would be served::

    python -m judge_server.value_head OUT_DIR        # from the embedded model
    judge-server serve --reward-model toy=OUT_DIR
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path


def build_value_head_model(base_folder: Path, out: Path, seed: int = 0) -> Path:
    """Save ``base_folder``'s model with a one-label ``score`` head (seeded) to ``out``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_folder, num_labels=1, dtype=torch.float32
    )
    hidden = int(model.config.hidden_size)
    generator = torch.Generator().manual_seed(seed)
    head = model.score.weight
    with torch.no_grad():
        head.copy_(torch.randn(head.shape, generator=generator) / math.sqrt(hidden))
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


def main(argv: Sequence[str] | None = None) -> None:
    from judge_server.model_store import resolve_model
    from judge_server.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the reward model to")
    parser.add_argument("--base", type=Path, help="HF causal LM folder (default: embedded)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    base = args.base or Path(resolve_model(None, Settings().cache_dir)[0])
    print(build_value_head_model(base, args.out, args.seed))


if __name__ == "__main__":
    main()
