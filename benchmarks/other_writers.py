"""Digits written by other people: scikit-learn's bundled copy of the UCI handwritten digits
(1,797 digits by 43 writers other than MNIST's, scanned at 32x32 and averaged down to 8x8, 17 grey
levels), made into MNIST's format the way MNIST was made: the digit fitted into 20x20 keeping its
aspect ratio and centred by mass in 28x28, white ink on black. No download: the files ship with
scikit-learn. A shift a deployment meets (another population's handwriting) and that hurts."""

import numpy as np
from PIL import Image

UPSCALE = 32  # the scans' own resolution: the 8x8 averages are smoothed back up before MNIST's fit


def scans() -> "tuple[np.ndarray, np.ndarray]":
    """(uint8 [1797, 32, 32] ink bright, int64 labels [1797]): each 8x8 average smoothed back up
    to the scans' own 32x32, in scikit-learn's order."""
    from sklearn.datasets import load_digits

    bundled = load_digits()
    grey = (bundled.images * (255.0 / 16.0)).astype(np.float32)  # 0-16 ink counts -> 0-255
    upscaled = [Image.fromarray(g).resize((UPSCALE, UPSCALE), Image.BICUBIC) for g in grey]
    return np.stack([np.asarray(u, np.float32).clip(0, 255).round().astype(np.uint8) for u in upscaled]), (
        bundled.target.astype(np.int64)
    )


def digits() -> "tuple[np.ndarray, np.ndarray]":
    """(uint8 images [1797, 28, 28], int64 labels [1797]) in scikit-learn's order: each scan's ink
    fitted and centred by the served model's own recipe (modules/pictures.py)."""
    import tensorflow as tf

    from modules import pictures

    images, labels = scans()
    fit = tf.function(lambda scan: pictures.centre(tf.cast(scan, tf.float32) / 255.0))
    return np.stack([fit(tf.constant(s)).numpy() for s in images]), labels
