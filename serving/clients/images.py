"""Pictures of digits for the model's `predict_pictures` signature, which turns them into MNIST's
28x28 itself (modules/pictures.py, inside the SavedModel): clients send the file's bytes as they
are, so there is one recipe, and what a real TF Serving answers is what this project tests.
"""

import io

import numpy as np
from PIL import Image


def load(path: str) -> bytes:
    """A picture file's bytes (PNG, JPEG, BMP or GIF), unchanged."""
    with open(path, "rb") as f:
        return f.read()


def heat_map(image: np.ndarray, attributions: np.ndarray, scale: int = 10) -> bytes:
    """A PNG of the 28x28 image the model saw (grey, dimmed) under its attributions: red where a pixel
    raised the explained class's probability, blue where it lowered it, full colour at the largest
    magnitude; each pixel drawn as a scale x scale square."""
    grey = np.asarray(image, np.float32)[:, :, None] / 255.0 * 0.35
    strength = np.asarray(attributions, np.float32)
    strength = strength / max(float(np.abs(strength).max()), 1e-12)
    red = np.clip(strength, 0, 1)[:, :, None] * np.array([1.0, 0.15, 0.1])
    blue = np.clip(-strength, 0, 1)[:, :, None] * np.array([0.1, 0.3, 1.0])
    rgb = np.clip(grey + red + blue, 0, 1)
    big = np.kron(rgb, np.ones((scale, scale, 1)))
    return png((big * 255).round().astype(np.uint8))


def png(pixels: np.ndarray) -> bytes:
    """A uint8 array (grey [h, w] or RGB [h, w, 3]) encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
