"""Request logs written by the server's own RequestLogger (no server process): real PredictionLog files."""

import numpy as np
import pytest

from modules import signatures
from serving.server import request_log
from serving.server.metrics import NoMetrics

MODEL_NAME = "mnist"


def write_log(prefix: str, images: np.ndarray, per_request: int = 1, version: int = 1, model_name: str = MODEL_NAME):
    """Logs images as requests of `per_request` images each, answered with one-hot probabilities of
    (image index % 10); returns the request ids in order."""
    logger = request_log.RequestLogger(request_log.LoggingSpec(prefix, 1.0), NoMetrics(), model_name)
    ids = []
    for start in range(0, len(images), per_request):
        batch = images[start : start + per_request]
        probabilities = np.eye(10, dtype=np.float32)[np.arange(start, start + len(batch)) % 10]
        ids.append(f"req{start}")
        logger.offer(
            ids[-1],
            version,
            signatures.IMAGES_SIGNATURE,
            {signatures.IMAGES_INPUT: batch},
            {},
            {signatures.PROBABILITIES_OUTPUT: probabilities},
        )
    logger.close()
    return ids


@pytest.fixture
def logged(tmp_path, test_images_labels):
    """20 test images logged as 10 requests of 2; (log prefix, images, request ids)."""
    images = test_images_labels[0][:20]
    prefix = str(tmp_path / "logs" / "requests")
    return prefix, images, write_log(prefix, images, per_request=2)
