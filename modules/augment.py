"""Training-time distortions of a batch of images, as a few batched TensorFlow ops.

One random geometry per image (rotation, scale, shift and, for some images, an elastic wobble)
becomes one sampling grid, read with one bilinear gather; then a share of the images gets one
of the ways real handwriting and scans differ from MNIST (the families of modules/distortions.py):
a wider or finer pen, a low-resolution scan, blur or noise. Randomness is stateless, drawn from
a per-batch seed (see seeded), so a training seed gives the same distortions every run.

Images are [b, 784] floats in [0, 1] under the transformed image key, as Transform writes them.
"""

import math
from typing import NamedTuple

import tensorflow as tf

from modules import features
from modules.hparams import HParams

SIZE = features.IMAGE_HEIGHT
CENTRE = (SIZE - 1) / 2.0
# The pen and scan distortions a distorted image gets one of, with equal chance.
PEN_AND_SCAN = ("thicker", "thinner", "low_resolution", "blur", "noise", "elastic")


class Settings(NamedTuple):
    translate: float  # largest shift, as a fraction of the side
    rotate_degrees: float  # largest rotation either way
    zoom: float  # the size is scaled by a factor in [1 - zoom, 1 + zoom]
    distort: float  # the share of images that also get one of PEN_AND_SCAN
    elastic_pixels: float = 1.5  # RMS displacement of the elastic wobble
    noise_std: float = 0.3  # largest noise standard deviation (pixels in [0, 1])
    lowest_resolution: int = 8  # the coarsest scan, in pixels per side
    largest_blur: float = 1.5  # the largest blur sigma, in pixels


def settings(hparams: HParams) -> Settings:
    return Settings(hparams.translate, hparams.rotate_degrees, hparams.zoom, hparams.distort)


def _uniform(seed, shape, low, high):
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def _sampling_grid(seeds, n, s: Settings, elastic_mask):
    """(rows, cols) [n, 28, 28]: where each output pixel reads the input, for a random rotation,
    scale and shift about the centre plus, where elastic_mask is 1, a smooth random displacement."""
    angle = _uniform(seeds[0], [n], -1.0, 1.0) * (s.rotate_degrees * math.pi / 180.0)
    scale = _uniform(seeds[1], [n], 1.0 - s.zoom, 1.0 + s.zoom)
    shift = _uniform(seeds[2], [n, 2], -1.0, 1.0) * (s.translate * SIZE)
    # output p reads input c + R(-angle) (p - c - shift) / scale
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    grid = tf.range(SIZE, dtype=tf.float32) - CENTRE
    out_rows = grid[None, :, None] - shift[:, 0, None, None]
    out_cols = grid[None, None, :] - shift[:, 1, None, None]
    rows = CENTRE + cos[:, None, None] * out_rows - sin[:, None, None] * out_cols
    cols = CENTRE + sin[:, None, None] * out_rows + cos[:, None, None] * out_cols
    # Elastic: Gaussian noise on a 4 x 4 grid, scaled up bilinearly: a displacement field smooth
    # over about 7 px, like Simard et al.'s sigma-4 filtered field.
    coarse = tf.random.stateless_normal([n, 4, 4, 2], seed=seeds[3])
    field = tf.image.resize(coarse, [SIZE, SIZE], method="bilinear") * (
        s.elastic_pixels * elastic_mask[:, None, None, None]
    )
    return rows + field[..., 0], cols + field[..., 1]


def _bilinear(images, rows, cols):
    """images [n, 28, 28] read at fractional (rows, cols) [n, 28, 28]; outside the image is 0."""
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1]])  # a ring of zeros: reads outside are black
    flat = tf.reshape(padded, [-1])
    side = SIZE + 2
    rows = tf.clip_by_value(rows + 1.0, 0.0, side - 1.001)
    cols = tf.clip_by_value(cols + 1.0, 0.0, side - 1.001)
    r0, c0 = tf.floor(rows), tf.floor(cols)
    fr, fc = rows - r0, cols - c0
    base = tf.range(tf.shape(images)[0])[:, None, None] * side * side
    index = base + tf.cast(r0, tf.int32) * side + tf.cast(c0, tf.int32)

    def at(offset):
        return tf.gather(flat, index + offset)

    top = at(0) * (1 - fc) + at(1) * fc
    bottom = at(side) * (1 - fc) + at(side + 1) * fc
    return top * (1 - fr) + bottom * fr


def _gaussian_kernel(sigma):
    taps = tf.range(-2.0, 3.0)
    weights = tf.exp(-0.5 * tf.square(taps / sigma))
    weights = weights / tf.reduce_sum(weights)
    return tf.reshape(weights[:, None] * weights[None, :], [5, 5, 1, 1])


def _pen_and_scan(images, seeds, s: Settings):
    """Every distortion of PEN_AND_SCAN except elastic, each over the whole batch [n, 28, 28, 1]."""
    n = tf.shape(images)[0]
    thicker = tf.nn.max_pool2d(images, 3, 1, "SAME")
    thinner = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
    pixels = tf.random.stateless_uniform(
        [], seed=seeds[4], minval=s.lowest_resolution, maxval=SIZE // 2 + 1, dtype=tf.int32
    )
    # area averaging down (what a coarse sensor does; 10x faster here than an antialiased bilinear)
    low = tf.image.resize(tf.image.resize(images, [pixels, pixels], method="area"), [SIZE, SIZE])
    sigma = _uniform(seeds[5], [], 0.5, s.largest_blur)
    blurred = tf.nn.conv2d(images, _gaussian_kernel(sigma), 1, "SAME")
    std = _uniform(seeds[6], [n, 1, 1, 1], 0.0, s.noise_std)
    noisy = images + std * tf.random.stateless_normal(tf.shape(images), seed=seeds[7])
    return [thicker, thinner, low, blurred, noisy]


def distort(images, seed, s: Settings):
    """images [n, 28, 28, 1] in [0, 1], distorted; seed: a stateless seed, shape [2]."""
    seeds = tf.random.experimental.stateless_split(seed, 10)
    n = tf.shape(images)[0]
    # Which pen/scan distortion each image gets: len(PEN_AND_SCAN) means none.
    chosen = tf.where(
        _uniform(seeds[8], [n], 0.0, 1.0) < s.distort,
        tf.random.stateless_uniform([n], seed=seeds[9], maxval=len(PEN_AND_SCAN), dtype=tf.int32),
        len(PEN_AND_SCAN),
    )
    elastic = tf.cast(tf.equal(chosen, PEN_AND_SCAN.index("elastic")), tf.float32)
    rows, cols = _sampling_grid(seeds, n, s, elastic)
    moved = _bilinear(images[..., 0], rows, cols)[..., None]
    out = moved
    for index, variant in enumerate(_pen_and_scan(moved, seeds, s)):
        out = tf.where(tf.equal(chosen, index)[:, None, None, None], variant, out)
    return tf.clip_by_value(out, 0.0, 1.0)


def augmenter(settings: Settings):
    """A tf.data map function: ((features, label), seed) -> (features, label) with the image
    distorted; see seeded for where the seed comes from."""
    image_key = features.transformed_name(features.IMAGE_KEY)

    def augment(batch_and_label, seed):
        batch, label = batch_and_label
        images = tf.reshape(batch[image_key], [-1, SIZE, SIZE, 1])
        images = distort(images, seed, settings)
        return {**batch, image_key: tf.reshape(images, [-1, features.NUM_PIXELS])}, label

    return augment


def distorted(dataset: tf.data.Dataset, settings: Settings, seed: int) -> tf.data.Dataset:
    """A dataset of (features, label) batches with each batch distorted, its stateless seed drawn
    from `seed` (see seeded); the maps run in parallel."""
    return seeded(dataset, seed).map(augmenter(settings), num_parallel_calls=tf.data.AUTOTUNE)


def seeded(dataset: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """(element, per-batch stateless seed) pairs: the seeds come from `seed` in a fixed order (a new
    order each epoch), so the distortions do not depend on how tf.data schedules its parallel calls."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((dataset, seeds))
