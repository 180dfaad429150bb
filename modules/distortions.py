"""How real handwriting differs from MNIST's, as deterministic image transforms: the families of
the robustness suite (benchmarks/robustness.py), each at three strengths, mild to strong.

Every function takes uint8 images [n, 28, 28] and returns uint8 images of the same shape; the
random ones (shift, rotation, elastic, noise) draw from a generator seeded by the caller, so a
family at a strength gives the same bytes every time. numpy, scipy and PIL only: no TensorFlow.
"""

from typing import Callable, Dict, NamedTuple, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage

SIZE = 28


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def thicker(images: np.ndarray, size: int, rng=None) -> np.ndarray:
    """A wider pen: grey dilation with a size x size square (3: one pixel more on every side)."""
    return ndimage.grey_dilation(images, size=(1, size, size))


_EROSIONS = {  # MNIST's strokes are 2-4 px wide: a 3x3 square leaves 14% of the ink, too little to read
    1: np.ones((1, 1, 2)),  # 73% of the ink left (the first 500 test images)
    2: np.ones((1, 2, 2)),  # 50%
    3: np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]]),  # 32%
}


def thinner(images: np.ndarray, step: int, rng=None) -> np.ndarray:
    """A finer pen: grey erosion, step 1-3 (a 1x2 line, a 2x2 square, a 3x3 cross)."""
    return ndimage.grey_erosion(images, footprint=_EROSIONS[step])


def low_resolution(images: np.ndarray, pixels: int, rng=None) -> np.ndarray:
    """Scanned at pixels x pixels and scaled back up to 28 x 28 (bilinear both ways)."""
    out = np.empty_like(images)
    for i, image in enumerate(images):
        small = Image.fromarray(image).resize((pixels, pixels), Image.BILINEAR)
        out[i] = np.asarray(small.resize((SIZE, SIZE), Image.BILINEAR))
    return out


def scale(images: np.ndarray, factor: float, rng=None) -> np.ndarray:
    """The digit factor times its size about the image centre (smaller or larger writing)."""
    side = max(1, int(round(SIZE * factor)))
    out = np.zeros_like(images)
    for i, image in enumerate(images):
        resized = np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))
        if side <= SIZE:
            top = (SIZE - side) // 2
            out[i, top : top + side, top : top + side] = resized
        else:
            top = (side - SIZE) // 2
            out[i] = resized[top : top + SIZE, top : top + SIZE]
    return out


def shift(images: np.ndarray, pixels: int, rng: np.random.Generator) -> np.ndarray:
    """Off centre: each image moved `pixels` in a random direction (of 8), with black filled in."""
    directions = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    out = np.zeros_like(images)
    for i, (dy, dx) in enumerate(directions[rng.integers(0, len(directions), len(images))] * pixels):
        src = images[i, max(0, -dy) : SIZE - max(0, dy), max(0, -dx) : SIZE - max(0, dx)]
        out[i, max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def rotation(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Slanted: each image rotated by +-degrees (the sign drawn per image)."""
    signs = rng.choice([-1.0, 1.0], len(images))
    return np.stack(
        [
            np.asarray(Image.fromarray(image).rotate(s * degrees, resample=Image.BILINEAR))
            for image, s in zip(images, signs)
        ]
    )


def elastic(images: np.ndarray, alpha: float, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    """A wobbly hand: Simard et al.'s elastic distortion, a random displacement field smoothed with
    a Gaussian of sigma pixels and scaled by alpha."""
    out = np.empty_like(images)
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    for i, image in enumerate(images):
        dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (SIZE, SIZE)), sigma) * alpha
        dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (SIZE, SIZE)), sigma) * alpha
        warped = ndimage.map_coordinates(image.astype(np.float32), [rows + dy, cols + dx], order=1, mode="constant")
        out[i] = _to_uint8(warped)
    return out


def blur(images: np.ndarray, sigma: float, rng=None) -> np.ndarray:
    """Out of focus or a soft pencil: a Gaussian blur of sigma pixels."""
    return _to_uint8(ndimage.gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma)))


def noise(images: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor or paper noise: Gaussian noise of std grey levels on every pixel, clipped to 0-255."""
    return _to_uint8(images.astype(np.float32) + rng.normal(0.0, std, images.shape))


class Family(NamedTuple):
    transform: Callable[..., np.ndarray]
    strengths: Tuple  # mild, middle, strong
    unit: str


FAMILIES: Dict[str, Family] = {
    "thicker": Family(thicker, (2, 3, 4), "px square dilation"),
    "thinner": Family(thinner, (1, 2, 3), "erosion step"),
    "low_resolution": Family(low_resolution, (14, 11, 8), "px scan"),
    "scale": Family(scale, (1.2, 0.8, 0.6), "x size"),
    "shift": Family(shift, (2, 3, 4), "px"),
    "rotation": Family(rotation, (10, 17.5, 25), "degrees"),
    "elastic": Family(elastic, (20, 30, 40), "alpha (sigma 4 px)"),
    "blur": Family(blur, (0.5, 1.0, 1.5), "px sigma"),
    "noise": Family(noise, (25, 50, 75), "grey levels std"),
}
MIDDLE = 1  # the index of the strength each family's target is set at


def apply(family: str, strength, images: np.ndarray, seed: int = 0) -> np.ndarray:
    """images under one family at one of its strengths; the same seed gives the same bytes."""
    if family not in FAMILIES:
        raise KeyError(f"unknown family {family!r}; known: {sorted(FAMILIES)}")
    rng = np.random.default_rng([seed, sorted(FAMILIES).index(family), int(float(strength) * 100)])
    return FAMILIES[family].transform(images, strength, rng=rng)
