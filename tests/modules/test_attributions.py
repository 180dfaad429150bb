"""Integrated gradients in the SavedModel (modules/attributions.py, the explain signatures of
modules/export.py) checked on a trained model, on MNIST test digits:

- completeness: each map adds up to the served probability's rise from a black image;
- agreement with an independent implementation (Google PAIR's `saliency` library, its own path,
  sums and gradients, on the same Keras weights);
- the model-randomisation sanity check (Adebayo et al., 2018): the same architecture with fresh
  weights gives maps unlike the trained model's, in rank over the ink's pixels (signed: measured
  -0.04 on average here; the absolute values stay correlated, about 0.4, as Adebayo et al. found
  for integrated gradients: both maps are multiplied by the same ink);
- locality: most of the positive attribution lies on the ink or next to it (from a black baseline
  a pixel of value 0 gets exactly 0, so this holds by construction for integrated gradients; it
  catches maps that are not theirs).

Each check is also run on a deliberately broken attribution and must reject it, so none of them
passes whatever the maps hold."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage, stats

from modules import attributions, features, signatures

ROWS = 16
# The trapezoidal rule's error over a path where ReLUs switch on falls as 1/STEPS (as 1/STEPS**2
# where the integrand is smooth): the gap allowed is one step's share of the largest possible rise
# (a probability: 1).
COMPLETENESS_TOLERANCE = 1.0 / attributions.STEPS
AGREEMENT = 0.99  # Pearson correlation with saliency's maps, every image
RANDOMISED_AT_MOST = 0.3  # Spearman rank correlation over the ink, trained against re-initialised weights, mean
ON_INK_AT_LEAST = 0.8  # share of the positive attribution on the ink or within a pixel of it


@pytest.fixture(scope="module")
def digits(test_images_labels):
    return test_images_labels[0][:ROWS]


@pytest.fixture(scope="module")
def loaded(exported_model):
    return tf.saved_model.load(exported_model)


@pytest.fixture(scope="module")
def explained(loaded, digits):
    out = loaded.signatures[signatures.EXPLAIN_SIGNATURE](images=tf.constant(digits))
    return {name: value.numpy() for name, value in out.items()}


def _rise(loaded, digits, targets) -> np.ndarray:
    """F(x) - F(black) for each row's target class, through predict_images."""
    predict = loaded.signatures[signatures.IMAGES_SIGNATURE]
    probabilities = predict(images=tf.constant(digits))[signatures.PROBABILITIES_OUTPUT].numpy()
    black = predict(images=tf.zeros([1, 28, 28], tf.uint8))[signatures.PROBABILITIES_OUTPUT].numpy()[0]
    rows = np.arange(len(targets))
    return probabilities[rows, targets] - black[targets]


def completeness_gap(maps, rise) -> float:
    return float(np.max(np.abs(maps.sum(axis=(1, 2)) - rise)))


def lowest_correlation(maps, reference) -> float:
    return min(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) for a, b in zip(maps, reference))


def mean_rank_correlation(maps, other, images) -> float:
    """Spearman's rank correlation of two maps over each image's ink (elsewhere both are 0), mean."""
    return float(np.mean([stats.spearmanr(a[i > 0], b[i > 0])[0] for a, b, i in zip(maps, other, images)]))


def on_ink_share(maps, images) -> float:
    """The positive attribution's share on pixels of ink (> 0) or within one pixel of it, worst image."""
    shares = []
    for attribution, image in zip(maps, images):
        near_ink = ndimage.binary_dilation(image > 0, iterations=1)
        positive = np.clip(attribution, 0, None)
        shares.append(positive[near_ink].sum() / positive.sum())
    return float(min(shares))


def _shuffled_pixels(maps) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.permutation(m.ravel()).reshape(m.shape) for m in maps])


def test_the_signature_explains_the_predicted_class_with_the_served_probabilities(loaded, digits, explained):
    predicted = loaded.signatures[signatures.IMAGES_SIGNATURE](images=tf.constant(digits))
    np.testing.assert_array_equal(explained[signatures.TARGETS_OUTPUT], predicted[signatures.CLASSES_OUTPUT].numpy())
    np.testing.assert_allclose(
        explained[signatures.PROBABILITIES_OUTPUT], predicted[signatures.PROBABILITIES_OUTPUT].numpy(), atol=1e-6
    )
    assert explained[signatures.ATTRIBUTIONS_OUTPUT].shape == (ROWS, 28, 28)
    given = loaded.signatures[signatures.EXPLAIN_TARGETS_SIGNATURE](
        images=tf.constant(digits[:2]), targets=tf.constant([3, 3], tf.int64)
    )
    assert given[signatures.TARGETS_OUTPUT].numpy().tolist() == [3, 3]


def test_completeness_each_map_adds_up_to_the_probability_rise_from_black(loaded, digits, explained):
    maps, targets = explained[signatures.ATTRIBUTIONS_OUTPUT], explained[signatures.TARGETS_OUTPUT]
    rise = _rise(loaded, digits, targets)
    assert completeness_gap(maps, rise) <= COMPLETENESS_TOLERANCE, (maps.sum(axis=(1, 2)), rise)
    # Broken: the mean gradient without its (x - baseline) factor.
    without_factor = maps / np.maximum(digits.astype(np.float32), 1.0)
    assert completeness_gap(without_factor, rise) > COMPLETENESS_TOLERANCE


def _saliency_maps(trained_model, digits, targets) -> np.ndarray:
    """PAIR's saliency IntegratedGradients on the Keras weights, in pixels 0-255: F is the served
    probability (the Transform graph's scaling, the model; temperature 1, as the test model's export)."""
    import saliency.core as saliency

    key = features.transformed_name(features.IMAGE_KEY)

    def call_model(batch, call_model_args=None, expected_keys=None):
        x = tf.constant(batch.reshape(len(batch), -1), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            probability = trained_model({key: x / features.MAX_PIXEL_VALUE}, training=False)[
                :, call_model_args["class"]
            ]
        gradients = tape.gradient(probability, x).numpy().reshape(batch.shape)
        return {saliency.INPUT_OUTPUT_GRADIENTS: gradients}

    method = saliency.IntegratedGradients()
    return np.stack(
        [
            method.GetMask(
                image.astype(np.float32),
                call_model,
                {"class": int(target)},
                x_baseline=np.zeros((28, 28), np.float32),
                x_steps=4 * attributions.STEPS + 1,
                batch_size=4 * attributions.STEPS + 1,
            )
            for image, target in zip(digits, targets)
        ]
    )


def test_an_independent_implementation_gives_the_same_maps(trained_model, digits, explained):
    maps, targets = explained[signatures.ATTRIBUTIONS_OUTPUT], explained[signatures.TARGETS_OUTPUT]
    reference = _saliency_maps(trained_model, digits, targets)
    assert lowest_correlation(maps, reference) >= AGREEMENT
    # Broken: each image given another image's map.
    assert lowest_correlation(np.roll(maps, 1, axis=0), reference) < AGREEMENT


def test_randomised_weights_give_different_maps(transform_output, trained_model, digits, explained, tmp_path):
    import keras

    from modules import export

    keras.utils.set_random_seed(1)
    fresh = keras.models.clone_model(trained_model)  # the same layers, new initial weights
    path = str(tmp_path / "randomised")
    export.export_serving_model(fresh, transform_output, path)
    randomised = (
        tf.saved_model.load(path)
        .signatures[signatures.EXPLAIN_TARGETS_SIGNATURE](
            images=tf.constant(digits), targets=tf.constant(explained[signatures.TARGETS_OUTPUT])
        )[signatures.ATTRIBUTIONS_OUTPUT]
        .numpy()
    )
    maps = explained[signatures.ATTRIBUTIONS_OUTPUT]
    assert mean_rank_correlation(maps, randomised, digits) <= RANDOMISED_AT_MOST
    # Broken: a "map" that is the input itself (an ink detector) does not depend on the weights.
    ink = digits.astype(np.float32)
    assert mean_rank_correlation(ink, ink, digits) > RANDOMISED_AT_MOST


def test_the_positive_attribution_lies_on_the_strokes(digits, explained):
    maps = explained[signatures.ATTRIBUTIONS_OUTPUT]
    assert on_ink_share(maps, digits) >= ON_INK_AT_LEAST
    # Broken: each map's pixels shuffled.
    assert on_ink_share(_shuffled_pixels(maps), digits) < ON_INK_AT_LEAST


@pytest.mark.parametrize("targets", [[10, 0], [-1, 0]])
def test_a_target_outside_the_classes_is_refused_in_plain_words(loaded, digits, targets):
    with pytest.raises(tf.errors.InvalidArgumentError, match="targets must be classes 0 to 9"):
        loaded.signatures[signatures.EXPLAIN_TARGETS_SIGNATURE](
            images=tf.constant(digits[:2]), targets=tf.constant(targets, tf.int64)
        )
