"""Picture files -> the bytes the `predict_pictures` signature takes."""

import io

import numpy as np
from PIL import Image

from serving.clients import images


def test_load_returns_the_files_bytes_unchanged(tmp_path):
    path = tmp_path / "digit.jpg"
    Image.fromarray(np.full((40, 30, 3), 200, np.uint8)).save(path, "JPEG")
    assert images.load(str(path)) == path.read_bytes()


def test_png_round_trips_grey_and_colour_pixels():
    rng = np.random.default_rng(0)
    for pixels in (rng.integers(0, 256, (9, 7), np.uint8), rng.integers(0, 256, (9, 7, 3), np.uint8)):
        decoded = np.asarray(Image.open(io.BytesIO(images.png(pixels))))
        np.testing.assert_array_equal(decoded, pixels)
