"""The model's contract with Transform: input names and output shape."""

import keras
import numpy as np

from modules import cnn, features
from modules.hparams import HParams


def test_model_inputs_match_transformed_features(transform_output):
    """Fails with both name lists when a model edit and preprocessing_fn disagree."""
    model = cnn.build_model(HParams(), steps_per_epoch=10)
    model_inputs = {t.name.split(":")[0] for t in model.inputs}
    transformed = set(transform_output.transformed_feature_spec())
    transformed.discard(features.transformed_name(features.LABEL_KEY))
    assert model_inputs == transformed, (
        f"model inputs {sorted(model_inputs)} != Transform outputs {sorted(transformed)} (label excluded): "
        "rename the keras.Input or change preprocessing_fn so they agree"
    )


def test_outputs_probabilities_for_ten_classes():
    model = cnn.build_model(HParams(), steps_per_epoch=10)
    x = {features.transformed_name(features.IMAGE_KEY): np.random.rand(5, features.NUM_PIXELS).astype("float32")}
    probs = model.predict(x, verbose=0)
    assert probs.shape == (5, features.NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_the_global_average_head_has_under_a_fifth_of_the_weights():
    flatten = cnn.build_model(HParams(), steps_per_epoch=10).count_params()
    small = cnn.build_model(HParams(head="global_average"), steps_per_epoch=10)
    assert small.count_params() < flatten / 5
    x = {features.transformed_name(features.IMAGE_KEY): np.random.rand(3, features.NUM_PIXELS).astype("float32")}
    assert small.predict(x, verbose=0).shape == (3, features.NUM_CLASSES)


def test_an_unknown_head_is_refused_by_name():
    import pytest

    with pytest.raises(ValueError, match="head 'dense' is not one of"):
        HParams(head="dense")


def test_float16_training_scales_its_loss_and_the_others_do_not():
    for policy, scaled in (("mixed_float16", True), ("mixed_bfloat16", False), ("float32", False)):
        model = cnn.compile_model(cnn.build_model(HParams(), 10, dtype_policy=policy), HParams(), 10)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) is scaled, policy


def test_a_float16_step_changes_the_weights():
    # The loss scale starts high and halves on each overflowing step, which it skips; within a few
    # steps the updates go through and the weights stay finite.
    model = cnn.compile_model(cnn.build_model(HParams(), 10, dtype_policy="mixed_float16"), HParams(), 10)
    x = {features.transformed_name(features.IMAGE_KEY): np.random.default_rng(0).random((320, 784), np.float32)}
    y = np.arange(320) % 10
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    after = [w.numpy() for w in model.trainable_weights]
    assert all(np.isfinite(a).all() for a in after)
    assert sum(not np.array_equal(b, a) for b, a in zip(before, after)) > len(after) // 2
