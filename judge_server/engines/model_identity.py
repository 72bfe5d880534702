"""A model's identity from its content: one digest of the files that decide its outputs.

A path or a hub id names a model without identifying it: a folder fine-tuned or re-downloaded in
place keeps its name, and a cached reward must not outlive the weights that gave it. So every
file at the top of the model folder (config, tokenizer, chat template, weights; hidden files and
subfolders such as Llama's unused ``original/`` are skipped) is hashed whole with sha256, and the
revision is the sha256 of the list of (name, digest).

Whole files rather than a header and sampled chunks: a fine-tune may change a few tensors only
(a reward model's score head is a few KiB of a multi-GB file), which sampling would miss. The
cost is read-bound and paid once per file version: each digest is remembered in
``<cache_dir>/file-digests.json`` by (path, size, mtime_ns, inode), so a restart hashes nothing
and a file rewritten in place is hashed again. Two processes updating the memo at once may lose
one's entries; that only costs a re-hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

MEMO_FILENAME = "file-digests.json"
#: Files that never change what the model computes (the model card, the licence).
_IGNORED_SUFFIXES = (".md",)
_IGNORED_PREFIXES = ("license", "notice", "readme")


def model_revision(model: str, cache_dir: Path) -> str:
    """``sha256:<hex>`` of a local model folder or of a hub id's downloaded snapshot.

    A model whose files cannot be found here (a hub id that is not in the local hub cache)
    gets ``name:<model>``, which identifies it by name only; a warning says so.
    """
    folder = _local_folder(model)
    if folder is None:
        log.warning("model %r has no local files to hash; cache keys name it only", model)
        return f"name:{model}"
    started = time.monotonic()
    revision = "sha256:" + folder_digest(folder, DigestMemo(cache_dir / MEMO_FILENAME))
    log.info("model %s revision %s (%.2f s)", model, revision[:19], time.monotonic() - started)
    return revision


def _local_folder(model: str) -> Path | None:
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not a hub id, or not downloaded: nothing to hash
        return None


def model_files(folder: Path) -> list[Path]:
    """The files whose content makes the revision, sorted by name."""
    files = []
    for entry in sorted(folder.iterdir()):
        name = entry.name.lower()
        if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
            continue
        if name.startswith(_IGNORED_PREFIXES) or not entry.is_file():
            continue
        files.append(entry)
    return files


def folder_digest(folder: Path, memo: DigestMemo | None = None) -> str:
    """sha256 hex over each model file's name and content digest."""
    files = model_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder} holds no model files")
    memo = memo if memo is not None else DigestMemo(None)
    h = hashlib.sha256()
    for path in files:
        h.update(f"{path.name}\0{memo.digest(path)}\n".encode())
    memo.save()
    return h.hexdigest()


class DigestMemo:
    """File digests remembered by (resolved path, size, mtime_ns, inode) in a JSON file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, list[object]] = self._load()
        self._dirty = False

    def digest(self, path: Path) -> str:
        real = path.resolve()  # hub snapshots are symlinks into blobs/
        stat = real.stat()
        stamp: list[object] = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        known = self._entries.get(str(real))
        if known is not None and known[:3] == stamp and isinstance(known[3], str):
            return known[3]
        with real.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        self._entries[str(real)] = [*stamp, digest]
        self._dirty = True
        return digest

    def _load(self) -> dict[str, list[object]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, list) and len(v) == 4}

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".digests-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._entries, f)
            os.replace(tmp, self.path)  # atomic: a reader never sees half a file
            tmp = None
        except OSError as exc:  # a read-only cache dir only costs re-hashing next start
            log.warning("cannot remember file digests in %s: %s", self.path, exc)
            return
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        self._dirty = False
