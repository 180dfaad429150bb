"""Feedback becomes the next span: MNIST's records plus the fresh training part, the test pair
unchanged, the held-out part apart; no labelled row is used twice."""

import json
import shutil

import numpy as np
import pytest

from modules import idx
from monitoring import feedback, span


@pytest.fixture
def data_root(tmp_path, small_data_root):
    root = tmp_path / "data"
    shutil.copytree(small_data_root, root)
    return str(root)


def _store(path, images, labels, prefix="r"):
    n = len(labels)
    feedback.write_new(
        str(path),
        {
            "request_ids": np.array([f"{prefix}{i // 2}" for i in range(n)]),
            "rows": np.arange(n) % 2,
            "versions": np.ones(n, np.int64),
            "timestamps": np.zeros(n, np.int64),
            "images": images,
            "probabilities": np.full((n, 10), 0.1, np.float32),
            "labels": labels,
        },
    )


def test_the_next_span_holds_mnist_plus_the_fresh_training_rows_and_keeps_the_rest_out(
    data_root, tmp_path, test_images_labels
):
    images, labels = test_images_labels[0][:200], test_images_labels[1][:200]
    _store(tmp_path / "store", images, labels)
    written = span.write_span(data_root, str(tmp_path / "store"), holdout_share=0.3)
    assert written["span"] == 2 and written["fresh_training_rows"] + written["fresh_held_out_rows"] == 200
    assert 30 <= written["fresh_held_out_rows"] <= 90  # Binomial(200, 0.3)

    old_train, old_train_labels = idx.read_span_pair(idx.span_dir(data_root, 1), "train")
    new_train, new_train_labels = idx.read_span_pair(idx.span_dir(data_root, 2), "train")
    fresh, fresh_labels = idx.read_span_pair(idx.span_dir(data_root, 2), idx.FRESH_PAIR)
    held = np.array([span.held_out(f"r{i // 2}", i % 2, 0.3) for i in range(200)])
    np.testing.assert_array_equal(new_train[: len(old_train)], old_train)
    np.testing.assert_array_equal(new_train[len(old_train) :], images[~held])
    np.testing.assert_array_equal(new_train_labels[len(old_train) :], labels[~held])
    np.testing.assert_array_equal(fresh, images[held])
    np.testing.assert_array_equal(fresh_labels, labels[held])
    for a, b in zip(
        idx.read_span_pair(idx.span_dir(data_root, 1), "t10k"), idx.read_span_pair(idx.span_dir(data_root, 2), "t10k")
    ):
        np.testing.assert_array_equal(a, b)
    with open(f"{idx.span_dir(data_root, 2)}/{span.ROWS_FILE}") as f:
        assert len(json.load(f)["rows"]) == 200

    # The same rows again: nothing new, no span 3.
    with pytest.raises(ValueError, match="no labelled rows .* has not taken already"):
        span.write_span(data_root, str(tmp_path / "store"))
    # New rows make span 3 from span 2's training records.
    _store(tmp_path / "store", images[:40], labels[:40], prefix="s")
    third = span.write_span(data_root, str(tmp_path / "store"))
    assert third["span"] == 3 and third["train_records"] == len(new_train) + third["fresh_training_rows"]
