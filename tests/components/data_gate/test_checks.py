"""DataGate's checks on real TFDV statistics computed from real MNIST records."""

import numpy as np
import pandas as pd
import tensorflow_data_validation as tfdv

from components.data_gate import checks
from modules import features
from pipeline import configs


def _stats(images, labels):
    frame = pd.DataFrame(
        {
            features.IMAGE_KEY: list(images.reshape(len(images), -1).astype(np.int64)),
            features.LABEL_KEY: [np.array([lab], np.int64) for lab in labels],
            features.SOURCE_KEY: [np.array([b"train"]) for _ in labels],
        }
    )
    return tfdv.generate_statistics_from_dataframe(frame, tfdv.StatsOptions(schema=_schema()))


def _schema():
    return tfdv.load_schema_text(configs.SCHEMA_FILE)


def _drift(current, previous):
    return checks.drift(current, previous, _schema(), configs.LABEL_DRIFT_LINF, configs.PIXEL_DRIFT_JSD)


def test_two_samples_of_mnist_do_not_drift(train_images_labels):
    images, labels = train_images_labels
    assert not _drift(_stats(images[:3000], labels[:3000]), _stats(images[3000:6000], labels[3000:6000])).anomaly_info


def test_skewed_labels_drift_with_plain_words(train_images_labels):
    images, labels = train_images_labels
    keep = labels[3000:6000] < 5
    drift = _drift(_stats(images[3000:6000][keep], labels[3000:6000][keep]), _stats(images[:3000], labels[:3000]))
    assert list(drift.anomaly_info) == [features.LABEL_KEY]
    [line] = checks.describe(drift, "split 'train'")
    assert (
        line.startswith("split 'train', feature 'label': High Linfty distance") and "above the threshold 0.05" in line
    )


def test_black_images_drift(train_images_labels):
    images, labels = train_images_labels
    drift = _drift(_stats(np.zeros_like(images[:500]), labels[:500]), _stats(images[:3000], labels[:3000]))
    assert list(drift.anomaly_info) == [features.IMAGE_KEY]


def test_no_previous_span_means_no_drift(train_images_labels):
    images, labels = train_images_labels
    assert not _drift(_stats(images[:100], labels[:100]), None).anomaly_info


def test_schema_anomalies_name_split_and_feature(train_images_labels):
    images, labels = train_images_labels
    bad = images[:50].astype(np.int64) * 2  # pixels up to 510: outside [0, 255]
    anomalies = tfdv.validate_statistics(_stats(bad, labels[:50]), _schema())
    [line] = checks.schema_anomalies({"eval": anomalies})
    assert line.startswith("split 'eval', feature 'image':")
