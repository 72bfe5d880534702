"""Build a tiny vision-language judge: Idefics3 (the SmolVLM architecture) with a seeded
two-layer SigLIP vision tower and projector, and the embedded SmolLM2-135M as its language model.

Its image understanding means nothing (the vision tower is random); it exists so that image
items can be tried and tested offline through vLLM's multimodal input, exactly as a real SmolVLM
judge would be served::

    judge-server build-tiny-vlm OUT_DIR          # from the embedded model
    JUDGE_MODEL=OUT_DIR judge-server serve
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judge_server.settings import Settings

#: 32x32 pixels in 8x8 patches, pixel-shuffled by 2: 4 image tokens per image, so prompts stay
#: short on CPU
IMAGE_SIZE = 32
PATCH_SIZE = 8
SCALE_FACTOR = 2
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR**2


def build_tiny_vlm(base_folder: Path, out: Path, seed: int = 0) -> Path:
    """Save an Idefics3 (SmolVLM) model whose language model is ``base_folder``'s to ``out``."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
    )
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
    )
    # The processor adds <image>, <fake_token_around_image> and <end_of_utterance>.
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=IMAGE_TOKENS,
        chat_template=tokenizer.chat_template,
    )
    text_model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    text_config = text_model.config.to_dict()
    text_config["vocab_size"] = len(tokenizer)
    config = Idefics3Config(
        vision_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        text_config=text_config,
        scale_factor=SCALE_FACTOR,
        image_token_id=processor.image_token_id,
        tie_word_embeddings=text_model.config.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model: Any = Idefics3ForConditionalGeneration(config)  # type: ignore[no-untyped-call]
    model.to(torch.float32)
    base = text_model.model.state_dict()
    with torch.no_grad():
        # The embedded model's weights; the rows of the added tokens stay seeded.
        rows = base["embed_tokens.weight"].shape[0]
        target = model.model.text_model
        target.embed_tokens.weight[:rows].copy_(base.pop("embed_tokens.weight"))
        target.load_state_dict(base, strict=False)
        model.lm_head.weight[:rows].copy_(text_model.lm_head.weight)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_command(settings: Settings, out: Path, base: Path | None, seed: int) -> int:
    """``judge-server build-tiny-vlm OUT``: from ``--base`` or the embedded model."""
    from judge_server.engines.model_store import resolve_model

    folder = base or Path(resolve_model(None, settings.cache_dir)[0])
    print(build_tiny_vlm(folder, out, seed))
    return 0
