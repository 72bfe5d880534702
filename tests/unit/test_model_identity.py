"""A model's revision comes from the content of its files, hashed once per file version."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from judge_server.engines.model_identity import (
    MEMO_FILENAME,
    DigestMemo,
    folder_digest,
    model_files,
    model_revision,
)


def make_model(folder: Path, weights: bytes = b"\x00\x01" * 4096) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


@pytest.fixture
def counted_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files whose content was actually read and hashed."""
    hashed: list[str] = []
    real = hashlib.file_digest

    def counting(f: Any, digest: str) -> Any:
        hashed.append(Path(f.name).name)
        return real(f, digest)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    return hashed


def test_revision_is_a_sha256_of_the_files_and_ignores_the_path(tmp_path: Path) -> None:
    one = make_model(tmp_path / "one")
    two = make_model(tmp_path / "elsewhere" / "two")
    revision = model_revision(str(one), tmp_path / "cache")
    assert revision.startswith("sha256:") and len(revision) == len("sha256:") + 64
    assert model_revision(str(two), tmp_path / "cache") == revision  # same content, other path


@pytest.mark.parametrize("changed", ["config.json", "tokenizer.json", "model.safetensors"])
def test_any_file_that_decides_outputs_changes_the_revision(tmp_path: Path, changed: str) -> None:
    folder = make_model(tmp_path / "m")
    before = model_revision(str(folder), tmp_path / "cache")
    path = folder / changed
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the middle: same size, other content
    path.write_bytes(bytes(data))
    assert model_revision(str(folder), tmp_path / "cache") != before


def test_a_new_weights_shard_changes_the_revision(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "m")
    before = model_revision(str(folder), tmp_path / "cache")
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"more")
    assert model_revision(str(folder), tmp_path / "cache") != before


def test_docs_hidden_files_and_subfolders_do_not_count(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "m")
    before = model_revision(str(folder), tmp_path / "cache")
    (folder / "README.md").write_text("# a model card")
    (folder / "LICENSE").write_text("Apache-2.0")
    (folder / ".judge-server-complete").write_text("done")
    (folder / "original").mkdir()
    (folder / "original" / "consolidated.pth").write_bytes(b"unused by vLLM")
    assert [p.name for p in model_files(folder)] == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    assert model_revision(str(folder), tmp_path / "cache") == before


def test_digests_are_remembered_until_a_file_changes(
    tmp_path: Path, counted_hashing: list[str]
) -> None:
    folder = make_model(tmp_path / "m")
    cache_dir = tmp_path / "cache"
    first = model_revision(str(folder), cache_dir)
    assert sorted(counted_hashing) == ["config.json", "model.safetensors", "tokenizer.json"]
    memo = json.loads((cache_dir / MEMO_FILENAME).read_text())
    assert str((folder / "model.safetensors").resolve()) in memo

    counted_hashing.clear()
    assert model_revision(str(folder), cache_dir) == first  # a restart hashes nothing
    assert counted_hashing == []

    (folder / "config.json").write_text('{"architectures": ["MistralForCausalLM"]}')
    assert model_revision(str(folder), cache_dir) != first
    assert counted_hashing == ["config.json"]  # only the rewritten file is read again


def test_a_file_rewritten_with_the_same_size_and_mtime_but_another_inode_is_rehashed(
    tmp_path: Path, counted_hashing: list[str]
) -> None:
    folder = make_model(tmp_path / "m", weights=b"a" * 100)
    cache_dir = tmp_path / "cache"
    first = model_revision(str(folder), cache_dir)
    weights = folder / "model.safetensors"
    stat = weights.stat()
    replacement = tmp_path / "new.safetensors"
    replacement.write_bytes(b"b" * 100)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, weights)  # what a download tool does: write aside, rename in
    counted_hashing.clear()
    assert model_revision(str(folder), cache_dir) != first
    assert counted_hashing == ["model.safetensors"]


def test_a_corrupt_or_unwritable_memo_only_costs_a_rehash(tmp_path: Path) -> None:
    folder = make_model(tmp_path / "m")
    cache_dir = tmp_path / "cache"
    expected = model_revision(str(folder), cache_dir)
    (cache_dir / MEMO_FILENAME).write_text("{not json")
    assert model_revision(str(folder), cache_dir) == expected
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    assert model_revision(str(folder), blocked / "cache") == expected  # memo cannot be saved
    assert not list(cache_dir.glob(".digests-*"))  # no temporary file left behind


def test_a_model_without_local_files_is_named_not_hashed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    revision = model_revision("no-such-org/no-such-model", tmp_path / "cache")
    assert revision == "name:no-such-org/no-such-model"
    assert "no local files to hash" in caplog.text


def test_a_hub_snapshot_is_hashed_through_its_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub cache keeps files as symlinks into blobs/: the content behind them counts."""
    blobs = make_model(tmp_path / "blobs")
    snapshot = tmp_path / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for path in blobs.iterdir():
        (snapshot / path.name).symlink_to(path)
    import huggingface_hub

    monkeypatch.setattr(
        huggingface_hub, "snapshot_download", lambda repo, local_files_only: str(snapshot)
    )
    assert model_revision("org/model", tmp_path / "cache") == model_revision(
        str(blobs), tmp_path / "cache"
    )


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        folder_digest(tmp_path / "empty", DigestMemo(None))


def test_the_embedded_model_is_hashed_once(tmp_path: Path, counted_hashing: list[str]) -> None:
    """The real embedded model (about 0.5 GB), when this machine has converted it."""
    from judge_server.engines.model_store import EMBEDDED_MODEL_NAME
    from judge_server.settings import Settings

    models = Settings().cache_dir / "models"
    folders = [f for f in sorted(models.glob(f"{EMBEDDED_MODEL_NAME}-*")) if f.is_dir()]
    if not folders:
        pytest.skip("the embedded model has not been converted on this machine")
    revision = model_revision(str(folders[0]), tmp_path / "cache")
    assert "model.safetensors" in counted_hashing
    counted_hashing.clear()
    assert model_revision(str(folders[0]), tmp_path / "cache") == revision
    assert counted_hashing == []
