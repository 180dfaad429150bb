"""The UCI digits made into MNIST's format: every digit, white on black, fitted into 20x20 and
centred by mass in 28x28, its label kept."""

import numpy as np

from benchmarks import other_writers


def test_the_uci_digits_are_laid_out_as_mnist_digits():
    images, labels = other_writers.digits()
    assert images.shape == (1797, 28, 28) and images.dtype == np.uint8 and labels.shape == (1797,)
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert images.max() == 255 and (images.reshape(len(images), -1).max(axis=1) > 128).all()
    for image in images[::50].astype(np.float64):
        ys, xs = np.nonzero(image)
        assert ys.max() - ys.min() < 20 and xs.max() - xs.min() < 20  # the digit fits MNIST's 20x20 box
        total = image.sum()
        cy, cx = (image.sum(axis=1) @ np.arange(28)) / total, (image.sum(axis=0) @ np.arange(28)) / total
        assert abs(cy - 14) < 1 and abs(cx - 14) < 1  # centred by mass, as MNIST's digits are
