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


def png(pixels: np.ndarray) -> bytes:
    """A uint8 array (grey [h, w] or RGB [h, w, 3]) encoded as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
