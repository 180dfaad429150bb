"""Durable writes: whole files in one rename, folders published whole, nothing left half-written."""

import os

import pytest

from modules import durable


def test_replace_file_writes_text_or_bytes_whole_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "models.config"
    durable.replace_file(str(path), "old")
    durable.replace_file(str(path), b"new \x00 bytes")
    assert path.read_bytes() == b"new \x00 bytes" and os.listdir(tmp_path) == ["models.config"]


def test_publish_tree_renames_a_whole_folder_and_never_over_an_existing_one(tmp_path):
    staging = tmp_path / ".staging"
    (staging / "sub").mkdir(parents=True)
    (staging / "sub" / "file").write_text("x")
    durable.publish_tree(str(staging), str(tmp_path / "span-2"))
    assert (tmp_path / "span-2" / "sub" / "file").read_text() == "x" and not staging.exists()
    other = tmp_path / ".other"
    (other / "sub").mkdir(parents=True)
    with pytest.raises(OSError):
        durable.publish_tree(str(other), str(tmp_path / "span-2"))  # a non-empty target stays
    assert (tmp_path / "span-2" / "sub" / "file").read_text() == "x"
