"""benchmarks/privacy.py: each budget's noise is the accountant's, and every row is trained and scored."""

import pytest

from benchmarks import keras_baseline, privacy
from modules import idx
from modules import privacy as dp


def test_the_noise_found_for_a_budget_spends_at_most_it_and_little_less():
    noise = privacy.noise_for(3.0, 256, 55000, 15)
    assert dp.epsilon(noise, 256, 55000, 15) <= 3.0 < dp.epsilon(noise - 0.005, 256, 55000, 15)


@pytest.mark.timeout(600)
def test_a_private_row_and_the_plain_row_are_trained_on_the_same_split():
    images, labels = idx.read_span_pair(keras_baseline.SPAN, "train")
    test_images, test_labels = idx.read_span_pair(keras_baseline.SPAN, "t10k")
    splits = {
        "train": (images[:2048], labels[:2048]),
        "eval": (images[2048:2304], labels[2048:2304]),
        "test": (test_images[:512], test_labels[:512]),
    }
    result = privacy.run([8.0], epochs=3, splits=splits)
    private, plain = result["rows"]
    assert private["target_epsilon"] == 8.0 and private["epsilon"] <= 8.0 and private["noise_multiplier"] > 0
    assert plain["epsilon"] is None and plain["noise_multiplier"] is None
    # 24 steps of batch 256: the plain network is well past chance (0.1); the private one is scored.
    assert 0.0 <= private["test_accuracy"] <= 1.0 and plain["test_accuracy"] > 0.3
    assert result["train_examples"] == 2048 and result["network"] == "privacy_tutorial"
