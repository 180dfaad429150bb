"""The Keras CNN (Keras 3, imported as `keras`: what tf.keras means depends on import order)."""
import keras

from modules import features
from modules.hparams import HParams


def build_model(hparams: HParams) -> keras.Model:
    """The seeds' CNN: Conv32-Pool-Conv64-Pool-Conv64-Flatten-Dense128-Dropout-Dense10.

    Input is Transform's output: a flat [784] float image under its transformed name.
    """
    image_key = features.transformed_name(features.IMAGE_KEY)
    inputs = keras.Input(shape=(features.NUM_PIXELS,), name=image_key)
    x = keras.layers.Reshape((features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1))(inputs)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(hparams.dropout)(x)
    # float32 probabilities whatever the compute dtype, so serving outputs stay stable.
    outputs = keras.layers.Dense(features.NUM_CLASSES, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs={image_key: inputs}, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hparams.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model
