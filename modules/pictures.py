"""Pictures of digits -> MNIST's 28x28 images, in TensorFlow ops, so the SavedModel does it.

A photo or scan of a written digit (PNG, JPEG, BMP or a one-frame GIF; any size; grey or colour; dark ink on
light paper or light on dark) becomes what MNIST's digits are: white ink on black, the ink's
bounding box fitted into 20x20 keeping its aspect ratio, centred by mass in 28x28.

The steps, each a function below:
1. decode: refuse a header that declares more than MAX_PIXELS (before any pixel is decoded), a GIF
   of more than one frame or with a frame outside its canvas (its blocks walked, not decoded), a
   picture smaller than MIN_SIDE; to grey, transparent pixels as white paper.
2. to a working size (longer side WORK_SIDE), so the cost does not grow with the photo's size.
3. polarity: ink is the minority whose values lie far from the paper's, so the sign of the
   third moment about the median says whether the ink is darker or lighter than the paper.
4. the paper's level, locally: a morphological opening (wider than any stroke) of the picture
   averaged down to PAPER_GRID a side, interpolated back up, so gradients and shadows are taken
   off with the paper.
5. the ink: what stands above the paper by more than Otsu's threshold of that difference, the
   paper's noise (4 sigma, from the median absolute deviation) and MIN_CONTRAST; isolated
   pixels (specks, salt noise) dropped; bands of ink along the page's edge (a table or a
   scanner lid) dropped.
6. no digit: fewer than MIN_INK_FRACTION of the pixels are ink.
7. crop the ink (its mass between the MASS_TRIM and 1 - MASS_TRIM quantiles on each axis), fit
   into 20x20, centre by mass, round to uint8.
"""

import tensorflow as tf

SIZE, BOX = 28, 20  # MNIST's field and the box its digits are fitted into

MAX_PIXELS = 4096 * 4096  # a larger header is refused before decoding (a 12 MP phone photo fits)
MIN_SIDE = 8  # a smaller picture cannot hold a readable digit
# TensorFlow's GIF decoder decodes every frame, each on the whole canvas, before anything can be
# checked, and a GIF's header does not say how many frames follow: a small GIF could decode to
# gigabytes. So a GIF's blocks are walked first (gif_frames): one frame, inside its canvas, or refused.
GIF_ANIMATED = "an animated GIF is not accepted (it holds more than one frame): send one picture"
GIF_FRAME_OUTSIDE = "the GIF has a frame outside its canvas"
GIF_MALFORMED = "the GIF's blocks do not parse (a truncated or damaged GIF, or over 64 KB of extensions)"
GIF_TOO_LONG = "the GIF is longer than its canvas can need (more than 2 bytes a pixel)"
GIF_MAX_BLOCKS = 256  # extensions and frames walked at most (a GIF holds a few); more: refused as malformed
GIF_MAX_EXTENSION_BYTES = 65536  # comments, application data: more is refused (the decoder copies each piece)
GIF_BYTES_PER_PIXEL = 2  # LZW codes are at most 12 bits a pixel: a longer GIF carries something else
WORK_SIDE = 256  # the longer side pictures are brought to before the recipe runs
PAPER_GRID = 128  # the paper's level is found on the picture averaged down to this many pixels a side
PAPER_WINDOW = 35  # ... through a window this wide (27% of the side): wider than a stroke
MIN_CONTRAST = 12.0  # grey levels the ink must stand above the paper, at the least
OTSU_SHARE = 0.5  # ... and above this share of Otsu's threshold (faint parts of a stroke are ink too)
NOISE_SIGMAS = 4.0  # ... and above the paper's noise
MIN_NEIGHBOURS = 2  # an ink pixel with fewer ink neighbours (of 8) is a speck
EDGE_BAND_FILL = 0.8  # a row or column along the edge this full of ink is the page's border
EDGE_BAND_MAX = 0.2  # ... but a band wider than this share of the side is the digit
MIN_INK_FRACTION = 0.001  # fewer ink pixels than this share: no digit
INK_LEVEL_QUANTILE = 0.8  # the ink's strength at this quantile becomes MNIST's 255
EDGE_WINDOW = 25  # a stroke's soft edge: pixels this close to the ink are kept
MASS_TRIM = 0.005  # the crop leaves out this share of the ink's mass on each side, per axis


def _uint(data, start: int, length: int, little_endian: bool):
    """An unsigned integer of `length` bytes at `start` of the string `data`."""
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data, start, length), tf.uint8), tf.int64)
    weights = tf.constant(
        [256**i for i in range(length)] if little_endian else [256**i for i in reversed(range(length))], tf.int64
    )
    return tf.reduce_sum(raw * weights)


def declared_size(data) -> tf.Tensor:
    """(height, width) int64 that the header of a PNG, GIF, BMP or JPEG declares, read without
    decoding pixels (a GIF's canvas); (-1, -1) for bytes none of them."""
    head = tf.strings.substr(data, 0, 4)
    length = tf.strings.length(data)
    long_enough = length >= 26

    def png():
        return tf.stack([_uint(data, 20, 4, False), _uint(data, 16, 4, False)])

    def gif():
        return tf.stack([_uint(data, 8, 2, True), _uint(data, 6, 2, True)])

    def bmp():
        height = _uint(data, 22, 4, True)
        height = tf.where(height >= 2**31, 2**32 - height, height)  # negative: rows stored top-down
        return tf.stack([height, _uint(data, 18, 4, True)])

    def jpeg():
        return tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64)

    def unknown():
        return tf.constant([-1, -1], tf.int64)

    is_png = tf.logical_and(long_enough, tf.equal(head, b"\x89PNG"))
    is_bmp = tf.logical_and(long_enough, tf.equal(tf.strings.substr(data, 0, 2), b"BM"))
    is_jpeg = tf.logical_and(length >= 4, tf.equal(tf.strings.substr(data, 0, 2), b"\xff\xd8"))
    branches = [(is_png, png), (is_gif(data), gif), (is_bmp, bmp), (is_jpeg, jpeg)]
    return tf.case(branches, default=unknown, exclusive=False)


def is_gif(data) -> tf.Tensor:
    """Whether the bytes start as a GIF does, with room for its header (13 bytes)."""
    return tf.logical_and(tf.strings.length(data) >= 13, tf.equal(tf.strings.substr(data, 0, 3), b"GIF"))


def gif_frames(data) -> "tuple[tf.Tensor, tf.Tensor, tf.Tensor]":
    """A GIF's block structure walked without decoding a pixel -> (frames: int32, counted up to 2;
    every frame counted lies inside the canvas: bool; the blocks parse: bool).

    A GIF is a header, a colour table, then blocks until the trailer (0x3B): extensions (0x21,
    a label) and frames (0x2C, a descriptor, a colour table, a code size), each followed by
    sub-blocks (a size byte, then that many bytes; size 0 ends the chain). Where each chain ends is
    found for every byte at once by pointer doubling (each byte read as a size byte jumps past its
    sub-block, and the jumps are composed until nothing moves: about log2 of the GIF's length
    passes), so the cost stays a few vector passes however many sub-blocks a GIF holds. More than
    GIF_MAX_BLOCKS blocks or GIF_MAX_EXTENSION_BYTES of extensions: not parsing."""
    raw = tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int32)
    n = tf.size(raw)

    def byte(k):
        return tf.where(k < n, tf.gather(raw, tf.clip_by_value(k, 0, tf.maximum(n - 1, 0))), -1)

    def u16(k):
        return byte(k) + 256 * byte(k + 1)

    def colour_table(packed):  # a flag in bit 7, the size in bits 0-2
        return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(2, packed % 8), 0)

    # chain_end[k]: the position of the 0 that ends a chain of sub-blocks starting at k; n: the data
    # ends first.
    at = tf.range(n + 1)
    sizes = tf.concat([raw, [0]], 0)
    jump = tf.where(tf.logical_or(sizes == 0, at == n), at, tf.minimum(at + 1 + sizes, n))
    jump = tf.where(at == n, n, jump)
    chain_end, _ = tf.while_loop(
        lambda j, moved: moved,
        lambda j, moved: (tf.gather(j, j), tf.reduce_any(tf.gather(j, j) != j)),
        (jump, tf.constant(True)),
    )

    def end_of_chain(k):
        return tf.gather(chain_end, tf.clip_by_value(k, 0, n))

    width, height = u16(6), u16(8)
    RUNNING, DONE, BAD, OUTSIDE = 0, 1, 2, 3

    def body(i, pos, frames, extension_bytes, status):
        b = byte(pos)
        is_frame = b == 0x2C
        inside = tf.logical_and(u16(pos + 1) + u16(pos + 5) <= width, u16(pos + 3) + u16(pos + 7) <= height)
        chain = end_of_chain(tf.where(is_frame, pos + 11 + colour_table(byte(pos + 9)), pos + 2))
        status = tf.where(
            b == 0x3B,
            DONE,
            tf.where(
                b < 0,
                tf.where(pos == n, DONE, BAD),  # no trailer, the data ending right after a block: read on
                tf.where(
                    tf.logical_and(is_frame, tf.logical_not(inside)),
                    OUTSIDE,
                    tf.where(tf.logical_and(tf.logical_or(is_frame, b == 0x21), chain < n), RUNNING, BAD),
                ),
            ),
        )
        frames = frames + tf.cast(is_frame, tf.int32)
        extension_bytes = extension_bytes + tf.where(b == 0x21, chain - pos, 0)
        status = tf.where(tf.logical_and(status == RUNNING, frames > 1), DONE, status)  # animated: enough read
        status = tf.where(extension_bytes > GIF_MAX_EXTENSION_BYTES, BAD, status)
        return i + 1, chain + 1, frames, extension_bytes, status

    start = 13 + colour_table(byte(10))
    _, _, frames, _, status = tf.while_loop(
        lambda i, pos, frames, extension_bytes, status: tf.logical_and(status == RUNNING, i < GIF_MAX_BLOCKS),
        body,
        (tf.constant(0), start, tf.constant(0), tf.constant(0), tf.constant(RUNNING)),
    )
    return frames, status != OUTSIDE, tf.logical_or(status == DONE, status == OUTSIDE)


def _gif_checks(data) -> tf.Tensor:
    """For a GIF: no longer than its canvas can need (checked first, so the walk's cost is bounded by
    the canvas), its blocks parse, it holds one frame, inside its canvas; for other bytes: true."""

    def check():
        height, width = tf.unstack(declared_size(data))
        longest = GIF_BYTES_PER_PIXEL * width * height + GIF_MAX_EXTENSION_BYTES + 2048  # + header, tables
        short_enough = tf.debugging.Assert(
            tf.cast(tf.strings.length(data), tf.int64) <= longest, [tf.constant(GIF_TOO_LONG)]
        )
        with tf.control_dependencies([short_enough]):
            frames, inside, parses = gif_frames(tf.identity(data))
        asserts = [
            tf.debugging.Assert(parses, [tf.constant(GIF_MALFORMED)]),
            tf.debugging.Assert(frames <= 1, [tf.constant(GIF_ANIMATED), tf.constant("frames:"), frames]),
            tf.debugging.Assert(inside, [tf.constant(GIF_FRAME_OUTSIDE)]),
        ]
        with tf.control_dependencies(asserts):
            return tf.constant(True)

    return tf.cond(is_gif(data), check, lambda: tf.constant(True))


def decode(data) -> tf.Tensor:
    """Encoded picture bytes (a scalar string) -> float32 grey [height, width] in [0, 255],
    transparent pixels as white paper."""
    size = declared_size(data)
    checks = [
        tf.debugging.Assert(
            tf.reduce_all(size >= 0), [tf.constant("the bytes are not a PNG, JPEG, BMP or GIF picture")]
        ),
        _gif_checks(data),
        tf.debugging.Assert(
            size[0] * size[1] <= MAX_PIXELS,
            [tf.constant(f"the header declares more than {MAX_PIXELS} pixels: (height, width) ="), size],
        ),
    ]
    with tf.control_dependencies(checks):
        image = tf.io.decode_image(data, channels=0, expand_animations=False)
    channels = tf.shape(image)[2]
    rgb = tf.cond(channels >= 3, lambda: image[:, :, :3], lambda: tf.tile(image[:, :, :1], [1, 1, 3]))
    opaque = tf.fill(tf.shape(image[:, :, :1]), tf.constant(255, tf.uint8))
    alpha = tf.cond(tf.equal(channels % 2, 0), lambda: image[:, :, -1:], lambda: opaque)  # grey+alpha, RGBA
    rgba = tf.concat([rgb, alpha], -1)
    shape = tf.shape(rgba)[:2]
    big_enough = tf.debugging.Assert(
        tf.reduce_min(shape) >= MIN_SIDE,
        [tf.constant(f"the picture is smaller than {MIN_SIDE}x{MIN_SIDE} pixels: (height, width) ="), shape],
    )
    with tf.control_dependencies([big_enough]):
        rgba = tf.cast(rgba, tf.float32)
    alpha = rgba[:, :, 3] / 255.0
    grey = tf.tensordot(rgba[:, :, :3], tf.constant([0.299, 0.587, 0.114]), 1)
    return grey * alpha + 255.0 * (1.0 - alpha)


def to_working_size(grey) -> tf.Tensor:
    """Resized (antialiased) so that the longer side is WORK_SIDE, keeping the aspect ratio."""
    shape = tf.cast(tf.shape(grey), tf.float32)
    scale = WORK_SIDE / tf.reduce_max(shape)
    size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1)
    return tf.image.resize(grey[:, :, tf.newaxis], size, antialias=True)[:, :, 0]


def _quantile(values, q: float) -> tf.Tensor:
    """The q quantile of a tensor's values (0 for no values)."""
    flat = tf.sort(tf.reshape(values, [-1]))
    index = tf.cast(tf.round(q * tf.cast(tf.size(flat) - 1, tf.float32)), tf.int32)
    return tf.cond(tf.size(flat) > 0, lambda: flat[tf.maximum(index, 0)], lambda: tf.constant(0.0))


def ink_up(grey) -> tf.Tensor:
    """The picture with the ink brighter than the paper (MNIST's polarity). Ink is the minority
    of pixels far from the paper's level, so it decides the sign of the third moment about the
    median: negative, the ink is darker, and the picture is inverted."""
    centred = grey - _quantile(grey, 0.5)
    dark_ink = tf.reduce_mean(centred**3) < 0
    return tf.where(dark_ink, 255.0 - grey, grey)


def _extend(a, margin: int) -> tf.Tensor:
    """[1, h, w, 1] with its edge rows and columns repeated `margin` times outward."""
    for axis in (1, 2):
        first, last = tf.gather(a, [0], axis=axis), tf.gather(a, [tf.shape(a)[axis] - 1], axis=axis)
        a = tf.concat([tf.repeat(first, margin, axis=axis), a, tf.repeat(last, margin, axis=axis)], axis=axis)
    return a


def _window_max(a, window: int) -> tf.Tensor:
    """The largest value within a window x window square around each pixel of [1, h, w, 1] (SAME
    borders): the row maxima's column maxima, the same as one square pooling at 2/window its cost."""
    return tf.nn.max_pool2d(tf.nn.max_pool2d(a, [1, window], 1, "SAME"), [window, 1], 1, "SAME")


def paper_level(x) -> tf.Tensor:
    """The paper's level at each pixel of `x` (ink bright): a morphological opening (the darkest
    within a window, then the brightest of those) wider than any stroke, on a PAPER_GRID x
    PAPER_GRID average of the picture (less noise), interpolated back to x's size. The opening
    removes the strokes and keeps what is broad or monotone: gradients, shadows and their edges
    (the picture's edges are extended outward first, so a ramp running off the page stays one)."""
    small = tf.image.resize(x[tf.newaxis, :, :, tf.newaxis], [PAPER_GRID, PAPER_GRID], antialias=True)
    margin = 2 * (PAPER_WINDOW // 2)
    eroded = -_window_max(-_extend(small, margin), PAPER_WINDOW)
    opened = _window_max(eroded, PAPER_WINDOW)[:, margin:-margin, margin:-margin, :]
    return tf.image.resize(opened, tf.shape(x), method="bilinear")[0, :, :, 0]


def otsu_threshold(values) -> tf.Tensor:
    """Otsu's threshold of values in [0, 256): the level that best splits their histogram in two."""
    counts = tf.cast(tf.histogram_fixed_width(values, [0.0, 256.0], nbins=256), tf.float32)
    p = counts / tf.reduce_sum(counts)
    levels = tf.range(256, dtype=tf.float32)
    weight, mass = tf.cumsum(p), tf.cumsum(p * levels)
    between = (mass[-1] * weight - mass) ** 2 / tf.maximum(weight * (1.0 - weight), 1e-12)
    return tf.cast(tf.argmax(between), tf.float32) + 1.0


def _edge_bands(fill) -> tf.Tensor:
    """1.0 for the rows (given each row's share of ink) kept, 0.0 for a band along either edge
    whose rows are over EDGE_BAND_FILL full (a table or a scanner lid), when such a band is at
    most EDGE_BAND_MAX of the side: a wider one is the digit itself (a tight crop of a 1)."""
    full = tf.cast(fill > EDGE_BAND_FILL, tf.float32)
    n = tf.cast(tf.shape(fill)[0], tf.float32)

    def band(run):
        return tf.where(tf.logical_and(run > 0, run <= EDGE_BAND_MAX * n), run + 2.0, 0.0)  # + its soft edge

    top = band(tf.reduce_sum(tf.math.cumprod(full)))
    bottom = band(tf.reduce_sum(tf.math.cumprod(tf.reverse(full, [0]))))
    index = tf.range(n)
    return tf.cast(tf.logical_and(index >= top, index < n - bottom), tf.float32)


def _neighbours(mask) -> tf.Tensor:
    """How many of each pixel's 8 neighbours are set."""
    kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])[:, :, tf.newaxis, tf.newaxis]
    return tf.nn.conv2d(mask[tf.newaxis, :, :, tf.newaxis], kernel, 1, "SAME")[0, :, :, 0]


def ink(x) -> "tuple[tf.Tensor, tf.Tensor]":
    """(ink strength in [0, 1] [h, w], whether a digit is there) from a picture with bright ink."""
    above = x - paper_level(x)
    strength = tf.nn.relu(above)
    spread = _quantile(tf.abs(above - _quantile(above, 0.5)), 0.5) * 1.4826  # the paper's noise
    threshold = tf.reduce_max(tf.stack([OTSU_SHARE * otsu_threshold(strength), NOISE_SIGMAS * spread, MIN_CONTRAST]))
    mask = tf.cast(strength > threshold, tf.float32)
    mask = mask * tf.cast(_neighbours(mask) >= MIN_NEIGHBOURS, tf.float32)  # specks out
    # A band along the edge (a table, a scanner's lid) is found both as ink and, where the paper's
    # level took it in as paper of its own, as what stands off the page's median level.
    off_page = tf.cast(x - _quantile(x, 0.5) > threshold, tf.float32)
    for axis in (1, 0):
        keep = _edge_bands(tf.reduce_mean(mask, axis=axis)) * _edge_bands(tf.reduce_mean(off_page, axis=axis))
        mask = mask * tf.expand_dims(keep, axis)
    count = tf.reduce_sum(mask)
    found = count >= MIN_INK_FRACTION * tf.cast(tf.size(mask), tf.float32)
    # The strokes' own level (a high quantile of the ink's strength) is MNIST's white; the soft
    # edge around the ink is kept, as MNIST keeps its anti-aliasing; the paper further off is black.
    level = _quantile(tf.boolean_mask(strength, mask > 0), INK_LEVEL_QUANTILE)
    near = _window_max(mask[tf.newaxis, :, :, tf.newaxis], EDGE_WINDOW)[0, :, :, 0]
    return tf.clip_by_value(strength / tf.maximum(level, 1.0), 0.0, 1.0) * near, found


def _span(mass) -> "tuple[tf.Tensor, tf.Tensor]":
    """[first, last] index of a 1-D mass profile, MASS_TRIM of the mass left out on each side."""
    share = tf.cumsum(mass) / tf.maximum(tf.reduce_sum(mass), 1e-6)
    first = tf.reduce_sum(tf.cast(share <= MASS_TRIM, tf.int32))
    last = tf.minimum(tf.reduce_sum(tf.cast(share < 1.0 - MASS_TRIM, tf.int32)), tf.size(mass) - 1)
    return first, tf.maximum(last, first)


def centre(strength) -> tf.Tensor:
    """Ink strength [h, w] in [0, 1] -> uint8 [28, 28]: the ink's box fitted into 20x20 keeping
    its aspect ratio, placed so its centre of mass is at the field's centre (MNIST's recipe)."""
    top, bottom = _span(tf.reduce_sum(strength, axis=1))
    left, right = _span(tf.reduce_sum(strength, axis=0))
    crop = strength[top : bottom + 1, left : right + 1]
    shape = tf.cast(tf.shape(crop), tf.float32)
    size = tf.maximum(tf.cast(tf.round(shape * BOX / tf.reduce_max(shape)), tf.int32), 1)
    digit = tf.clip_by_value(tf.image.resize(crop[:, :, tf.newaxis], size, antialias=True)[:, :, 0], 0.0, 1.0)
    total = tf.maximum(tf.reduce_sum(digit), 1e-6)
    cy = tf.reduce_sum(tf.range(size[0], dtype=tf.float32) * tf.reduce_sum(digit, axis=1)) / total
    cx = tf.reduce_sum(tf.range(size[1], dtype=tf.float32) * tf.reduce_sum(digit, axis=0)) / total
    y = tf.clip_by_value(tf.cast(tf.round(SIZE / 2 - cy), tf.int32), 0, SIZE - size[0])
    x = tf.clip_by_value(tf.cast(tf.round(SIZE / 2 - cx), tf.int32), 0, SIZE - size[1])
    field = tf.pad(digit, [[y, SIZE - size[0] - y], [x, SIZE - size[1] - x]])
    return tf.cast(tf.round(tf.reshape(field, [SIZE, SIZE]) * 255.0), tf.uint8)


def from_grey(grey) -> "tuple[tf.Tensor, tf.Tensor]":
    """A float grey picture [h, w] in [0, 255] -> (uint8 [28, 28], whether a digit was found);
    no digit: an all-black field."""
    strength, found = ink(ink_up(to_working_size(grey)))
    image = tf.cond(found, lambda: centre(strength), lambda: tf.zeros([SIZE, SIZE], tf.uint8))
    return image, found


def from_bytes(data) -> "tuple[tf.Tensor, tf.Tensor]":
    """Encoded picture bytes (a scalar string) -> (uint8 [28, 28], whether a digit was found)."""
    return from_grey(decode(data))


def batch_from_bytes(pictures) -> "tuple[tf.Tensor, tf.Tensor]":
    """Encoded pictures [batch] -> (uint8 [batch, 28, 28], bool [batch]), one picture at a time
    (so at most one decoded picture is in memory)."""
    return tf.map_fn(
        from_bytes,
        pictures,
        fn_output_signature=(tf.TensorSpec([SIZE, SIZE], tf.uint8), tf.TensorSpec([], tf.bool)),
        parallel_iterations=1,
    )
