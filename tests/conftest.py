"""Shared fixtures: the shipped MNIST span, small real IDX slices, and a real Transform output."""

import contextlib
import fcntl
import os
import shutil

import numpy as np
import pytest

from modules import idx
from pipeline import configs, data_slice
from pipeline.configs import DATA_ROOT


@pytest.fixture(scope="session")
def span_dir() -> str:
    return idx.span_dir(DATA_ROOT, 1)  # the shipped span, whatever feedback spans a local loop added


@pytest.fixture(scope="session")
def train_images_labels(span_dir):
    return idx.read_span_pair(span_dir, "train")


@pytest.fixture(scope="session")
def small_data_root(tmp_path_factory) -> str:
    """A real IDX span of 600 training and 200 test records (the first of each file)."""
    return data_slice.write_slice(DATA_ROOT, str(tmp_path_factory.mktemp("small_data")), 600, 200)


@pytest.fixture(scope="session")
def beam_pipeline_args():
    return list(configs.BEAM_PIPELINE_ARGS)


@pytest.fixture(scope="session")
def few_images(train_images_labels):
    images, labels = train_images_labels
    return images[:64], labels[:64]


@contextlib.contextmanager
def _locked(path: str):
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def built_once(tmp_path_factory, name: str, build) -> str:
    """The folder `name`, made by build(folder) once per test run: `make test`'s workers (pytest-xdist
    processes) share one, the first to ask builds it while the others wait. A build that failed
    leaves no folder behind, so the next worker to ask builds it again and fails the same way."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # every worker's base folder lies in this run's one
    folder = str(base / name)
    with _locked(folder):
        if not os.path.isdir(folder):
            building = folder + ".building"
            shutil.rmtree(building, ignore_errors=True)
            os.makedirs(building)
            build(building)
            os.rename(building, folder)
    return folder


@pytest.fixture(scope="session")
def transform_dir(tmp_path_factory, few_images, beam_pipeline_args) -> str:
    """Runs preprocessing_fn through tft_beam on real images; returns the transform output folder."""
    return built_once(
        tmp_path_factory, "transform_output", lambda out_dir: _transform(out_dir, few_images, beam_pipeline_args)
    )


def _transform(out_dir: str, few_images, beam_pipeline_args) -> None:
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from modules import features, preprocessing

    images, labels = few_images
    rows = [
        {
            features.IMAGE_KEY: img.reshape(-1).astype(np.int64),
            features.LABEL_KEY: np.array([lab], np.int64),
            features.SOURCE_KEY: np.array([b"train"]),
        }
        for img, lab in zip(images, labels)
    ]
    # The raw features as the schema has them: the exported signatures must parse the served one only.
    raw_spec = {
        features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
        features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
        features.SOURCE_KEY: tf.io.FixedLenFeature([1], tf.string),
    }
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_spec))
    with beam.Pipeline(options=PipelineOptions(beam_pipeline_args)) as p:
        with tft_beam.Context(temp_dir=os.path.join(out_dir, "tft_tmp")):
            data = p | beam.Create(rows)
            transform_fn = (data, metadata) | tft_beam.AnalyzeDataset(preprocessing.preprocessing_fn)
            _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
            # Transform also records the raw schema: serving parses raw tf.Examples with it.
            _ = metadata | "WriteRawMetadata" >> tft_beam.WriteMetadata(
                os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR), p
            )
    shutil.rmtree(os.path.join(out_dir, "tft_tmp"), ignore_errors=True)


@pytest.fixture(scope="session")
def transform_output(transform_dir):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(transform_dir)


TRAIN_IMAGES = 4000  # for the exported model below
EXPORTED_MODEL_SEED = 0
TRAINED_WEIGHTS = "model.weights.h5"


@pytest.fixture(scope="session")
def test_images_labels(span_dir):
    return idx.read_span_pair(span_dir, "t10k")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, train_images_labels):
    """The project's CNN (Keras) after one epoch on 4,000 real training images. Seeded (weights,
    dropout, shuffling) and trained once per test run: every worker loads the same weights, so
    tests that read its answers see the same model whatever ran before."""
    import keras

    from modules import cnn, features
    from modules.hparams import HParams

    hparams = HParams(batch_size=64, bn_momentum=0.9)

    def build():
        keras.utils.set_random_seed(EXPORTED_MODEL_SEED)
        # float32, what training picks on a CPU without native bfloat16 (modules/strategy.py), where
        # bfloat16 is emulated and ten times slower; test_export.py exports mixed-precision models.
        return cnn.build_model(hparams, steps_per_epoch=TRAIN_IMAGES // hparams.batch_size, dtype_policy="float32")

    def train(folder):
        images, labels = train_images_labels
        model = build()
        x = images[:TRAIN_IMAGES].reshape(TRAIN_IMAGES, -1).astype(np.float32) / features.MAX_PIXEL_VALUE
        model.fit(
            {features.transformed_name(features.IMAGE_KEY): x},
            labels[:TRAIN_IMAGES],
            batch_size=hparams.batch_size,
            epochs=1,
            verbose=0,
        )
        model.save_weights(os.path.join(folder, TRAINED_WEIGHTS))

    folder = built_once(tmp_path_factory, "trained_model", train)
    model = build()
    model.load_weights(os.path.join(folder, TRAINED_WEIGHTS))
    return model


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, transform_output, trained_model) -> str:
    """trained_model exported as the serving SavedModel, every signature (once per test run)."""
    from modules import export

    folder = built_once(
        tmp_path_factory,
        "exported_model",
        lambda folder: export.export_serving_model(trained_model, transform_output, os.path.join(folder, "model")),
    )
    return os.path.join(folder, "model")


def pytest_collection_modifyitems(config, items):
    """The end-to-end modules, the longest, first (a stable sort keeps every other order): `make
    test`'s workers take whole files in this order, so they share the long runs and finish
    together on short tests instead of one worker starting a long run near the end."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)
