"""Pictures of digits -> MNIST-style 28x28 uint8 arrays (white digit on black, centred by mass).

MNIST's own recipe: fit the digit's bounding box into 20x20 keeping its aspect ratio, then
place it in a 28x28 field so that its centre of mass is at the centre. The web page does the
same in JavaScript (serving/web/index.html).
"""

import numpy as np
from PIL import Image

SIZE, BOX = 28, 20


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """A 2-D uint8 array, any size, ink bright or dark -> uint8 [28, 28]."""
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image; got shape {gray.shape}")
    if gray.mean() > 127:  # dark ink on a light background: invert to MNIST's white on black
        gray = 255 - gray
    ys, xs = np.nonzero(gray > 0.1 * gray.max()) if gray.max() > 0 else ((), ())
    if len(ys) == 0:
        return np.zeros((SIZE, SIZE), np.uint8)
    crop = gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = BOX / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = np.asarray(Image.fromarray(crop).resize((w, h), Image.LANCZOS), np.float32).clip(0, 255)
    total = digit.sum() or 1.0
    cy, cx = (np.arange(h) @ digit.sum(axis=1)) / total, (np.arange(w) @ digit.sum(axis=0)) / total
    top = min(max(int(round(SIZE / 2 - cy)), 0), SIZE - h)
    left = min(max(int(round(SIZE / 2 - cx)), 0), SIZE - w)
    out = np.zeros((SIZE, SIZE), np.float32)
    out[top : top + h, left : left + w] = digit
    return out.round().astype(np.uint8)


def load(path: str) -> np.ndarray:
    """A PNG/JPEG (or anything Pillow reads) -> uint8 [28, 28]."""
    with Image.open(path) as img:
        return to_mnist(np.asarray(img.convert("L")))
