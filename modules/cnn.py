"""The Keras CNN (Keras 3, imported as `keras`: what tf.keras means depends on import order)."""

import math
from typing import List

import keras

from modules import features
from modules.fused_batch_norm import FusedBatchNorm
from modules.hparams import HParams


def build_model(
    hparams: HParams, steps_per_epoch: int, dtype_policy: str = "float32", fused_batch_norm: bool = True
) -> keras.Model:
    """32C3-BN-32C3-BN-MP-64C3-BN-64C3-BN-MP-128C3-BN-Dense128-BN-Dropout-Dense10, 'same' padding;
    hparams.head "global_average" averages the 7x7x128 map before Dense128 instead of flattening it.

    Input is Transform's output: a flat [784] float image under its transformed name.
    Augmentation happens in the input pipeline (modules/augment.py), so the exported graph holds
    no random state. fused_batch_norm=False uses Keras's own layer (slower here: see
    modules/fused_batch_norm.py).
    """

    def batch_norm():
        if fused_batch_norm:
            return FusedBatchNorm(momentum=hparams.bn_momentum, dtype=dtype_policy)
        return keras.layers.BatchNormalization(momentum=hparams.bn_momentum, dtype=dtype_policy)

    image_key = features.transformed_name(features.IMAGE_KEY)
    inputs = keras.Input(shape=(features.NUM_PIXELS,), name=image_key)
    x = keras.layers.Reshape((features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1))(inputs)
    # The 128C3 at 7x7 adds a fifth of the compute and lifted the 3-seed median (benchmarks/accuracy_bench.py).
    for filters in (32, 32, None, 64, 64, None, 128):
        if filters is None:
            x = keras.layers.MaxPooling2D(dtype=dtype_policy)(x)
            continue
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype=dtype_policy)(x)
        x = batch_norm()(x)
        x = keras.layers.Activation("relu", dtype=dtype_policy)(x)
    if hparams.head == "global_average":
        x = keras.layers.GlobalAveragePooling2D(dtype=dtype_policy)(x)
    else:
        x = keras.layers.Flatten(dtype=dtype_policy)(x)
    x = keras.layers.Dense(128, use_bias=False, dtype=dtype_policy)(x)
    x = batch_norm()(x)
    x = keras.layers.Activation("relu", dtype=dtype_policy)(x)
    x = keras.layers.Dropout(hparams.dropout, dtype=dtype_policy)(x)
    # float32 probabilities whatever the compute dtype, so serving outputs stay stable.
    outputs = keras.layers.Dense(features.NUM_CLASSES, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs={image_key: inputs}, outputs=outputs)
    return compile_model(model, hparams, steps_per_epoch)


def build_privacy_tutorial_model(hparams: HParams, steps_per_epoch: int, dtype_policy: str = "float32") -> keras.Model:
    """TensorFlow Privacy's MNIST tutorial network, 16C8s2-MP2s1-32C4s2-MP2s1-Dense32-Dense10
    (HParams network "privacy_tutorial"), for DP-SGD (modules/privacy.py): no BatchNorm, whose batch
    statistics would let one example reach the others' gradients. Same input, output and
    optimizer as build_model's; hparams.head and dropout do not apply."""
    image_key = features.transformed_name(features.IMAGE_KEY)
    inputs = keras.Input(shape=(features.NUM_PIXELS,), name=image_key)
    x = keras.layers.Reshape((features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1))(inputs)
    x = keras.layers.Conv2D(16, 8, strides=2, padding="same", activation="relu", dtype=dtype_policy)(x)
    x = keras.layers.MaxPooling2D(2, 1, dtype=dtype_policy)(x)
    x = keras.layers.Conv2D(32, 4, strides=2, padding="valid", activation="relu", dtype=dtype_policy)(x)
    x = keras.layers.MaxPooling2D(2, 1, dtype=dtype_policy)(x)
    x = keras.layers.Flatten(dtype=dtype_policy)(x)
    x = keras.layers.Dense(32, activation="relu", dtype=dtype_policy)(x)
    outputs = keras.layers.Dense(features.NUM_CLASSES, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs={image_key: inputs}, outputs=outputs)
    return compile_model(model, hparams, steps_per_epoch)


def compile_model(model: keras.Model, hparams: HParams, steps_per_epoch: int, **options) -> keras.Model:
    """Adam with decoupled weight decay on the warm-up-cosine schedule, cross-entropy, accuracy;
    options go to model.compile (benchmarks/trainer_profile.py measures jit_compile and
    steps_per_execution with it)."""
    optimizer = keras.optimizers.Adam(
        learning_rate_schedule(hparams, steps_per_epoch), weight_decay=hparams.weight_decay or None
    )
    if float16_layers(model):
        # Keras scales the loss only when the model's own policy is mixed_float16; build_model sets
        # the policy layer by layer, so float16 gradients would underflow without this.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, **{**loss_and_metrics(), **options})
    return model


def float16_layers(model: keras.Model) -> bool:
    """Whether any layer of the model (of a wrapped model too) computes in float16."""
    return any(layer.dtype_policy.compute_dtype == "float16" for layer in model._flatten_layers())


def loss_and_metrics() -> dict:
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(),
        "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    }


def averaged(members: List[keras.Model]) -> keras.Model:
    """One model whose probabilities are the mean of the members' (HParams.ensemble), with the same
    input and output as each member: export, calibration and the Evaluator see one model. Compiled
    for evaluate() only (it is not trained further)."""
    if len(members) == 1:
        return members[0]
    image_key = features.transformed_name(features.IMAGE_KEY)
    inputs = keras.Input(shape=(features.NUM_PIXELS,), name=image_key)
    outputs = keras.layers.Average(dtype="float32")([member({image_key: inputs}) for member in members])
    model = keras.Model(inputs={image_key: inputs}, outputs=outputs)
    model.compile(**loss_and_metrics())
    return model


def learning_rate_schedule(hparams: HParams, steps_per_epoch: int):
    """Linear warm-up to the peak over warmup_fraction of all steps, then cosine decay to 0."""
    total = max(1, hparams.epochs * steps_per_epoch)
    warmup = int(math.ceil(total * hparams.warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total - warmup),
        warmup_target=hparams.peak_learning_rate,
        warmup_steps=warmup,
    )
