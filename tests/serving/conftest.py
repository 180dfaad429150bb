"""Serving fixtures: a real exported model (briefly trained on real MNIST) and servers on 127.0.0.1.

`start_server` starts this project's server, or the real `tensorflow_model_server` when the test
asks for it and it is on PATH; both take the same command line.
"""
import os
import shutil

import numpy as np
import pytest

from modules import cnn, export, features
from modules.hparams import HParams
from pipeline import configs
from serving.process import ServerProcess

MODEL_NAME = configs.MODEL_NAME
TRAIN_IMAGES = 4000
SERVER_KINDS = ["dev", "tensorflow_model_server"]


@pytest.fixture(scope="session")
def test_images_labels(span_dir):
    from components.idx_example_gen import idx

    return idx.read_pair(os.path.join(span_dir, "t10k-images-idx3-ubyte.gz"),
                         os.path.join(span_dir, "t10k-labels-idx1-ubyte.gz"))


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, transform_output, train_images_labels) -> str:
    """A SavedModel of the project's CNN after one epoch on 4,000 real training images."""
    images, labels = train_images_labels
    hparams = HParams(batch_size=64, bn_momentum=0.9)
    model = cnn.build_model(hparams, steps_per_epoch=TRAIN_IMAGES // hparams.batch_size)
    x = images[:TRAIN_IMAGES].reshape(TRAIN_IMAGES, -1).astype(np.float32) / features.MAX_PIXEL_VALUE
    model.fit({features.transformed_name(features.IMAGE_KEY): x}, labels[:TRAIN_IMAGES],
              batch_size=hparams.batch_size, epochs=1, verbose=0)
    path = str(tmp_path_factory.mktemp("exported") / "model")
    export.export_serving_model(model, transform_output, path)
    return path


def publish(model_dir: str, base_path: str, version: int) -> str:
    """Places a complete copy at <base_path>/<version> in one rename, as a safe push does."""
    os.makedirs(base_path, exist_ok=True)
    staging = os.path.join(base_path, f".staging-{version}")
    shutil.copytree(model_dir, staging)
    final = os.path.join(base_path, str(version))
    os.rename(staging, final)
    return final


def start_server(kind: str, base_path: str, *extra: str) -> ServerProcess:
    """kind "dev": serving.server; "tensorflow_model_server": the real one, skipped when not on PATH."""
    binary = None
    if kind == "tensorflow_model_server":
        binary = shutil.which("tensorflow_model_server")
        if binary is None:
            pytest.skip("tensorflow_model_server is not on PATH: the contract ran against serving.server only")
    return ServerProcess(base_path, MODEL_NAME, *extra, binary=binary)


@pytest.fixture(scope="module", params=SERVER_KINDS)
def server(request, tmp_path_factory, exported_model):
    """A server of each kind over a push directory holding version 1."""
    base = str(tmp_path_factory.mktemp("push") / MODEL_NAME)
    publish(exported_model, base, 1)
    srv = start_server(request.param, base)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory, exported_model):
    """This project's server alone, with a small body limit (1 MiB) for the oversized cases."""
    base = str(tmp_path_factory.mktemp("push_dev") / MODEL_NAME)
    publish(exported_model, base, 1)
    srv = start_server("dev", base, f"--max_request_bytes={1 << 20}")
    yield srv
    srv.stop()
