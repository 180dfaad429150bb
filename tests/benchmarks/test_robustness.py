"""The robustness suite: each handwriting family is deterministic and grows with its strength, and
the scores of a real model on real test digits follow from its predictions."""

import numpy as np
import pytest

from benchmarks import robustness
from components.release import confidence
from modules import distortions, idx
from pipeline import configs


@pytest.fixture(scope="module")
def test_digits():
    images, labels = idx.read_span_pair(idx.span_dir(configs.DATA_ROOT, 1), idx.TEST_PAIR)
    return images[:300], labels[:300]


@pytest.mark.parametrize("family", sorted(distortions.FAMILIES))
def test_a_family_is_deterministic_and_strays_further_as_it_gets_stronger(family, test_digits):
    images = test_digits[0][:100]
    distances = []
    for strength in distortions.FAMILIES[family].strengths:
        out = distortions.apply(family, strength, images, seed=3)
        assert out.shape == images.shape and out.dtype == np.uint8
        assert np.array_equal(out, distortions.apply(family, strength, images, seed=3))
        distances.append(np.abs(out.astype(float) - images).mean())
    # Strengths run mild to strong, except scale, whose mild one (1.2) enlarges and the others shrink.
    ordered = distances[1:] if family == "scale" else distances
    assert all(a < b for a, b in zip(ordered, ordered[1:])) and distances[0] > 0, distances


def test_shift_moves_the_ink_by_its_pixels(test_digits):
    images = test_digits[0][:50]
    moved = distortions.apply("shift", 3, images)
    rows, cols = np.mgrid[0:28, 0:28]

    def centre(batch):
        ink = batch.astype(float)
        return np.stack([(ink * rows).sum((1, 2)), (ink * cols).sum((1, 2))], 1) / ink.sum((1, 2))[:, None]

    step = np.abs(centre(moved) - centre(images)).max(axis=1)
    assert np.median(step) == pytest.approx(3, abs=0.3)


def test_a_real_model_scored_on_every_family(exported_model, test_digits):
    images, labels = test_digits
    predict = confidence.images_predictor(exported_model, batch=128)
    report = robustness.evaluate(predict, images, labels)
    probabilities = predict(images)
    assert report["clean"]["accuracy"] == round(float(np.mean(probabilities.argmax(1) == labels)), 5)
    assert report["clean"]["accuracy"] > 0.7  # one epoch on 4,000 images: far above chance
    assert {n: len(s) for n, s in report["families"].items()} == dict.fromkeys(distortions.FAMILIES, 3)
    # A 3x3-cross erosion leaves a third of the ink: the model must do worse than on clean digits.
    assert report["families"]["thinner"]["3"]["accuracy"] < report["clean"]["accuracy"]
    assert not report["meets"]["clean"]  # one epoch does not reach 99.7%
