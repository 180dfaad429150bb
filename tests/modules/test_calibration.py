"""Temperature scaling: recovers a known over-confidence, changes no prediction, travels inside the
exported model; the calibration error of known cases."""

import numpy as np
import pytest
import tensorflow as tf

from modules import calibration, cnn, export, signatures
from modules.hparams import HParams


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_fitting_recovers_a_known_over_confidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (5000, 10))
    truth = _softmax(logits)  # calibrated by construction: labels drawn from these probabilities
    labels = np.array([rng.choice(10, p=p) for p in truth])
    over_confident = _softmax(3 * logits)
    temperature = calibration.fit_temperature(over_confident, labels)
    assert temperature == pytest.approx(3, rel=0.1)
    calibrated = calibration.with_temperature(over_confident, temperature)
    assert np.array_equal(calibrated.argmax(1), over_confident.argmax(1))
    before = calibration.expected_calibration_error(over_confident, labels)
    after = calibration.expected_calibration_error(calibrated, labels)
    assert after < 0.03 < before


def test_calibration_error_of_known_cases():
    labels = np.array([0, 0, 1, 1])
    assert calibration.expected_calibration_error(np.eye(10)[labels], labels) == 0.0
    half_right = np.zeros((4, 10))
    half_right[:, 0] = 0.9  # 90% sure of class 0, right on half the rows
    assert calibration.expected_calibration_error(half_right, labels) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no rows"):
        calibration.fit_temperature(np.zeros((0, 10)), np.zeros(0, int))


def _examples(images) -> tf.Tensor:
    return tf.constant(
        [
            tf.train.Example(
                features=tf.train.Features(
                    feature={"image": tf.train.Feature(int64_list=tf.train.Int64List(value=image.reshape(-1)))}
                )
            ).SerializeToString()
            for image in images
        ]
    )


def test_the_exported_model_applies_its_temperature_in_every_signature(tmp_path, transform_output, few_images):
    """predict_images, serving_default (tf.Examples) and classify (TF Serving's Classify API) all
    answer temperature-scaled probabilities."""
    model = cnn.build_model(HParams(), steps_per_epoch=10)
    images = few_images[0][:16]
    probabilities = {}
    for temperature in (1.0, 2.5):
        path = str(tmp_path / str(temperature))
        export.export_serving_model(model, transform_output, path, temperature=temperature)
        loaded = tf.saved_model.load(path)
        assert float(loaded.temperature.numpy()) == temperature
        by_images = loaded.signatures[signatures.IMAGES_SIGNATURE](images=tf.constant(images))
        probabilities[temperature] = {
            signatures.IMAGES_SIGNATURE: by_images[signatures.PROBABILITIES_OUTPUT].numpy(),
            signatures.SERVING_SIGNATURE: loaded.signatures[signatures.SERVING_SIGNATURE](examples=_examples(images))[
                signatures.PROBABILITIES_OUTPUT
            ].numpy(),
            signatures.CLASSIFY_SIGNATURE: loaded.signatures[signatures.CLASSIFY_SIGNATURE](
                **{signatures.CLASSIFY_INPUTS: _examples(images)}
            )[signatures.CLASSIFY_SCORES].numpy(),
        }
        if temperature != 1.0:
            assert np.array_equal(
                by_images[signatures.CLASSES_OUTPUT].numpy(), probabilities[1.0]["predict_images"].argmax(1)
            )
    for name, plain in probabilities[1.0].items():
        scaled = probabilities[2.5][name]
        assert not np.allclose(scaled, plain, atol=1e-3), name  # the temperature changed them...
        np.testing.assert_allclose(scaled, calibration.with_temperature(plain, 2.5), atol=1e-5, err_msg=name)
