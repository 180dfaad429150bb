"""The monitor's checks on real MNIST pixels and TFDV statistics: clean test images against training
images stay within the DataGate's bounds; thicker strokes do not."""

import numpy as np
import pytest
import tensorflow_data_validation as tfdv

from benchmarks.production_loop import thicker
from monitoring import checks
from pipeline import configs


@pytest.fixture(scope="module")
def schema():
    return tfdv.load_schema_text(configs.SCHEMA_FILE)


@pytest.fixture(scope="module")
def training_stats(train_images_labels, schema):
    return checks.statistics(train_images_labels[0][:5000], schema)


def test_clean_test_images_show_no_skew_and_thicker_strokes_do(test_images_labels, training_stats, schema):
    images = test_images_labels[0][:1000]
    clean = checks.pixel_skew(checks.statistics(images, schema), training_stats, schema, configs.PIXEL_DRIFT_JSD)
    shifted = checks.pixel_skew(
        checks.statistics(thicker(images), schema), training_stats, schema, configs.PIXEL_DRIFT_JSD
    )
    assert not clean.flagged and clean.value < configs.PIXEL_DRIFT_JSD / 5
    assert shifted.flagged and shifted.value > configs.PIXEL_DRIFT_JSD


def test_drift_between_windows_and_no_previous_window(test_images_labels, schema):
    images = test_images_labels[0]
    first, second = checks.statistics(images[:1000], schema), checks.statistics(images[1000:2000], schema)
    assert not checks.pixel_drift(second, first, schema, configs.PIXEL_DRIFT_JSD).flagged
    shifted = checks.statistics(thicker(images[2000:3000]), schema)
    assert checks.pixel_drift(shifted, second, schema, configs.PIXEL_DRIFT_JSD).flagged
    unjudged = checks.pixel_drift(second, None, schema, configs.PIXEL_DRIFT_JSD)
    assert unjudged.value is None and not unjudged.flagged


def test_served_inputs_are_checked_against_the_serving_environment(test_images_labels, schema):
    clean = checks.schema_anomalies(checks.statistics(test_images_labels[0][:50], schema), schema)
    assert not clean.flagged and clean.value == 0 and clean.detail == "no anomalies"
    # Grey levels past 255 (a client sending 16-bit pixels): outside the schema's int_domain.
    too_bright = test_images_labels[0][:50].astype(np.int64) * 4
    flagged = checks.schema_anomalies(checks.statistics(too_bright, schema), schema)
    assert flagged.flagged and flagged.value >= 1 and "feature 'image'" in flagged.detail


def test_class_mix_and_low_confidence():
    uniform = np.eye(10)[np.arange(1000) % 10]
    mix = np.full(10, 0.1)
    assert checks.class_mix_shift(uniform, mix, 0.05).value == pytest.approx(0.0)
    sevens = np.eye(10)[np.r_[np.arange(900) % 10, np.full(100, 7)]]
    assert checks.class_mix_shift(sevens, mix, 0.05).value == pytest.approx(0.19 - 0.1)
    unsure = np.full((100, 10), 0.1)
    unsure[:90] = np.eye(10)[np.arange(90) % 10]
    check = checks.low_confidence(unsure, 0.5, 0.05)
    assert check.value == pytest.approx(0.1) and check.flagged


def test_wilson_upper_bound_matches_the_formula():
    # 90 of 100 right, z = 1.645 (z^2 = 2.706): (0.9 + 2.706/200 + 1.645 * sqrt(0.0009 + 2.706/40000))
    # / (1 + 2.706/100) = (0.91353 + 0.05117) / 1.02706 = 0.9393.
    assert checks.wilson_upper(90, 100) == pytest.approx(0.9393, abs=1e-4)
    assert checks.wilson_upper(100, 100) == 1.0


def test_online_accuracy_is_flagged_only_when_clearly_below_the_test_accuracy():
    labels = np.arange(200) % 10
    right = np.eye(10)[labels]
    wrong_share = lambda k: np.eye(10)[np.r_[(labels[:k] + 1) % 10, labels[k:]]]  # noqa: E731
    assert not checks.online_accuracy(wrong_share(2), labels, 0.99, 0.01, 50).flagged  # 99.0%
    flagged = checks.online_accuracy(wrong_share(20), labels, 0.99, 0.01, 50)  # 90.0%
    assert flagged.flagged and flagged.value == pytest.approx(0.9)
    too_few = checks.online_accuracy(right[:10], labels[:10], 0.99, 0.01, 50)
    assert too_few.value is None and not too_few.flagged and "10 labelled rows" in too_few.detail
