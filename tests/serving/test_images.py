"""Pictures -> MNIST-style 28x28 arrays."""

import numpy as np
from PIL import Image

from serving import images


def test_dark_ink_on_white_is_inverted_scaled_into_20px_and_centred_by_mass(tmp_path):
    picture = np.full((200, 100), 255, np.uint8)
    picture[20:180, 40:60] = 0  # a thick black vertical bar: a "1"
    path = tmp_path / "one.png"
    Image.fromarray(picture).save(path)
    digit = images.load(str(path))
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    rows, cols = np.nonzero(digit > 128)
    assert rows.max() - rows.min() + 1 == 20  # the long side fits MNIST's 20-pixel box
    ys, xs = np.nonzero(digit)
    weights = digit[ys, xs].astype(float)
    assert abs(np.average(ys, weights=weights) - 14) <= 1 and abs(np.average(xs, weights=weights) - 14) <= 1


def test_a_blank_picture_is_all_zeros():
    assert not images.to_mnist(np.zeros((50, 50), np.uint8)).any()
