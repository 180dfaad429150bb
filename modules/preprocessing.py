"""Transform's preprocessing: the same graph runs in training (Transform) and in serving."""

import tensorflow as tf

from modules import features


def scale_pixels(image: tf.Tensor) -> tf.Tensor:
    """Pixels 0..255 -> float32 in [0, 1].

    A fixed scale, not a TFT analyzer: the pixel range is known from the format, and a
    data-dependent min/max would silently change the model's input on a skewed span.
    Multiplied by the reciprocal, not divided: in a graph (Transform, the SavedModel) TensorFlow's
    optimizer turns the division into this product, and eager code (the benchmarks) dividing got
    126 of the 256 values one float32 step off.
    """
    return tf.cast(image, tf.float32) * (1.0 / features.MAX_PIXEL_VALUE)


# Transform calls this (dotted path modules.preprocessing.preprocessing_fn).
def preprocessing_fn(inputs):
    """Scales the image; the label passes through as is (the Evaluator reads the raw label)."""
    return {
        features.transformed_name(features.IMAGE_KEY): scale_pixels(inputs[features.IMAGE_KEY]),
        features.transformed_name(features.LABEL_KEY): inputs[features.LABEL_KEY],
    }
