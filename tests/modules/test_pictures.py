"""MNIST's recipe in TensorFlow ops (modules/pictures.py) on pictures as people make them: real
MNIST test digits printed on paper-like pages (benchmarks/pictures.py), blank and noisy pages,
and bytes that are not one readable picture."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from benchmarks import pictures as suite
from modules import pictures


@pytest.fixture(scope="module")
def recipe():
    return tf.function(pictures.batch_from_bytes, input_signature=[tf.TensorSpec([None], tf.string)])


@pytest.fixture(scope="module")
def digits(test_images_labels):
    return test_images_labels[0][:8]


def _encode(pixels, fmt="PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, fmt, **options)
    return buffer.getvalue()


def _correlation(a, b) -> float:
    """The pixels' correlation at the best relative shift of at most one pixel each way (centring by
    mass rounds to whole pixels, and one pixel moves a thin stroke off itself)."""
    a, b = a.astype(float), np.pad(b.astype(float), 1)
    return max(
        float(np.corrcoef(a.reshape(-1), b[1 + dy : 29 + dy, 1 + dx : 29 + dx].reshape(-1))[0, 1])
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def test_a_digit_on_grey_paper_becomes_its_mnist_image_again(recipe, digits):
    """Printed large on grey paper, dark ink, off-centre and back: the 28x28 the recipe gives is the
    MNIST digit it was printed from (the pixels correlate, give or take a one-pixel shift, above 0.95 on
    average and 0.85 at the least: the page's resampling softens a thin stroke; the mass is centred)."""
    page = suite.Page(paper=190, offset=(0.1, -0.1))
    rng = np.random.default_rng(0)
    seen, found = recipe(tf.constant([suite.render(d, page, rng) for d in digits]))
    assert found.numpy().all()
    correlations = [_correlation(original, image) for original, image in zip(digits, seen.numpy())]
    assert np.mean(correlations) > 0.95 and min(correlations) > 0.85, correlations
    for image in seen.numpy():
        ys, xs = np.nonzero(image)
        weights = image[ys, xs].astype(float)
        assert abs(np.average(ys, weights=weights) - 14) <= 1 and abs(np.average(xs, weights=weights) - 14) <= 1


def test_either_polarity_and_any_page_size_give_the_same_image(recipe, digits):
    rng = np.random.default_rng(0)
    pages = [suite.Page(), suite.Page(paper=30, ink=(235, 235, 235)), suite.Page(side=64), suite.Page(side=900)]
    for digit in digits[:3]:
        seen, _ = recipe(tf.constant([suite.render(digit, page, rng) for page in pages]))
        reference = seen.numpy()[0]
        for other in seen.numpy()[1:]:
            assert _correlation(reference, other) > 0.9


def test_the_box_is_20_pixels_on_the_long_side(recipe):
    bar = np.full((200, 100), 255, np.uint8)
    bar[20:180, 40:60] = 0  # a black vertical bar: a "1"
    seen, found = recipe(tf.constant([_encode(bar)]))
    rows, _ = np.nonzero(seen.numpy()[0] > 128)
    assert bool(found.numpy()[0]) and rows.max() - rows.min() + 1 == 20


def test_blank_and_noise_only_pages_are_no_digit(recipe):
    """Every paper the benchmark uses (grey, gradients, shadows, noise, JPEG) with nothing on it."""
    blanks = suite.blank_pages(40)
    seen, found = recipe(tf.constant(blanks))
    assert not found.numpy().any()
    assert not seen.numpy().any()  # no digit: an all-black field, not a faint guess


def test_specks_and_a_dark_border_do_not_move_the_crop(recipe, digits):
    page = np.full((300, 300), 230, np.uint8)
    digit = np.asarray(Image.fromarray(255 - digits[0]).resize((180, 180), Image.BICUBIC))
    page[60:240, 60:240] = np.minimum(page[60:240, 60:240], digit)
    clean, _ = recipe(tf.constant([_encode(page)]))
    rng = np.random.default_rng(1)
    dirty = page.copy()
    dirty[rng.integers(0, 300, 40), rng.integers(0, 300, 40)] = 0  # dust
    dirty[:, :18] = 25  # the scanner's lid along the left edge
    seen, found = recipe(tf.constant([_encode(dirty)]))
    assert bool(found.numpy()[0]) and _correlation(clean.numpy()[0], seen.numpy()[0]) > 0.95


def test_transparent_pixels_are_paper(recipe, digits):
    """A drawing on a transparent canvas (ink opaque, the rest alpha 0, as a browser exports it)."""
    ink = np.asarray(Image.fromarray(digits[0]).resize((140, 140), Image.BICUBIC))
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[:, :, 3] = ink  # black ink, its coverage in alpha
    opaque = np.full((140, 140), 255, np.uint8) - ink  # the same drawing on white
    seen, found = recipe(tf.constant([_encode(rgba), _encode(opaque)]))
    assert found.numpy().all() and _correlation(seen.numpy()[0], seen.numpy()[1]) > 0.99


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF"])
def test_the_header_gives_the_size_without_decoding(fmt):
    data = _encode(np.zeros((37, 53), np.uint8), fmt)
    assert pictures.declared_size(tf.constant(data)).numpy().tolist() == [37, 53]


def _gif(frames, **options) -> bytes:
    buffer = io.BytesIO()
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    images[0].save(buffer, "GIF", save_all=len(images) > 1, append_images=images[1:], **options)
    return buffer.getvalue()


def _gif_frame_outside_canvas() -> bytes:
    """A GIF whose canvas declares 8x8 and whose one frame is 600x600."""
    data = bytearray(_gif([np.full((600, 600), 255, np.uint8)]))
    data[6:10] = (8).to_bytes(2, "little") + (8).to_bytes(2, "little")
    return bytes(data)


def _truncated_gif() -> bytes:
    """A one-frame GIF cut in the middle of its frame's data."""
    data = _gif([np.random.default_rng(0).integers(0, 255, (64, 64))])
    return data[: len(data) // 2]


def _gif_sub_blocks_of_one_byte(count: int) -> bytes:
    """A one-frame GIF whose frame data is `count` one-byte sub-blocks (legal, and the most work for
    a reader that steps through them one by one)."""
    data = _gif([np.zeros((16, 16), np.uint8)])
    header = 13 + 3 * 2 ** ((data[10] & 7) + 1)
    descriptor = b"\x2c" + bytes(4) + (16).to_bytes(2, "little") * 2 + b"\x00"
    return data[:header] + descriptor + b"\x08" + b"\x01\x00" * count + b"\x00\x3b"


def _gif_with_comment(length: int) -> bytes:
    """A one-frame 400x400 GIF with a comment of `length` bytes before its frame."""
    data = _gif([np.zeros((400, 400), np.uint8)])
    header = 13 + 3 * 2 ** ((data[10] & 7) + 1)
    chunks = [b"x" * min(255, length - k) for k in range(0, length, 255)]
    comment = b"\x21\xfe" + b"".join(bytes([len(c)]) + c for c in chunks) + b"\x00"
    return data[:header] + comment + data[header:]


def test_a_one_frame_gif_reads_as_the_same_picture_in_png(recipe, digits):
    page = suite.render(digits[0], suite.Page(paper=200), np.random.default_rng(0))
    grey = np.asarray(Image.open(io.BytesIO(page)).convert("L"))
    seen, found = recipe(tf.constant([_encode(grey), _gif([grey])]))
    assert found.numpy().all() and np.array_equal(seen.numpy()[0], seen.numpy()[1])


def test_walking_a_gif_counts_its_frames_and_checks_them_against_the_canvas():
    frame = np.full((20, 30), 200, np.uint8)
    walk = tf.function(pictures.gif_frames)
    counted = {
        "one frame": walk(_gif([frame])),
        "three frames": walk(_gif([frame, 255 - frame, frame // 2])),
        "a frame outside": walk(_gif_frame_outside_canvas()),
        "truncated": walk(_truncated_gif()),
        "a million sub-blocks": walk(_gif_sub_blocks_of_one_byte(1_000_000)),
    }
    as_lists = {name: [bool(x) if x.dtype == bool else int(x) for x in values] for name, values in counted.items()}
    assert as_lists == {
        "one frame": [1, True, True],
        "three frames": [2, True, True],  # counting stops at the second frame
        "a frame outside": [1, False, True],
        "truncated": [1, True, False],
        "a million sub-blocks": [1, True, True],
    }


def _bomb() -> bytes:
    """A 5,000 x 5,000 PNG: 25 M pixels in a few kilobytes."""
    return _encode(np.zeros((5000, 5000), np.uint8), optimize=True)


BAD = {
    "not a picture": (lambda: b"GET / HTTP/1.1 this is text", "not a PNG, JPEG, BMP or GIF"),
    "truncated PNG": (lambda: _encode(np.full((64, 64), 128, np.uint8))[:60], "PNG"),
    "over the pixel limit": (_bomb, "declares more than"),
    "an animated GIF": (lambda: _gif([np.zeros((32, 32)), np.full((32, 32), 255)]), "animated GIF is not accepted"),
    "a GIF frame outside its canvas": (_gif_frame_outside_canvas, "frame outside its canvas"),
    "a truncated GIF": (_truncated_gif, "do not parse"),
    "a GIF longer than its canvas needs": (lambda: _gif_sub_blocks_of_one_byte(100_000), "longer than its canvas"),
    "a GIF of 100 KB of comments": (lambda: _gif_with_comment(100_000), "over 64 KB of extensions"),
    "1x1": (lambda: _encode(np.zeros((1, 1), np.uint8)), "smaller than"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bytes_that_are_not_one_readable_picture_are_refused_plainly(recipe, case):
    make, words = BAD[case]
    with pytest.raises(tf.errors.InvalidArgumentError) as refused:
        recipe(tf.constant([make()]))
    assert words in str(refused.value)


def test_an_oversized_header_is_refused_before_any_pixel_is_decoded(recipe):
    """The header says 5,000 x 5,000 and the rest is not PNG data: decoding would fail with
    another message; the size check answers first."""
    header = _bomb()[:33]
    with pytest.raises(tf.errors.InvalidArgumentError, match="declares more than"):
        recipe(tf.constant([header + b"\0" * 100]))
