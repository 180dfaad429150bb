"""training.train with HParams.ensemble: members trained one after another, served as their mean."""

import numpy as np
import tensorflow as tf

from modules import features, strategy, training
from modules.hparams import HParams

KEY = features.transformed_name(features.IMAGE_KEY)


def _pixels(images):
    return (images.reshape(len(images), features.NUM_PIXELS) / 255.0).astype("float32")


def _dataset(images, labels):
    return tf.data.Dataset.from_tensor_slices(({KEY: _pixels(images)}, labels.reshape(-1, 1).astype("int64"))).batch(32)


def _members(model):
    return [layer for layer in model.layers if hasattr(layer, "layers")]


def test_an_ensemble_trains_each_member_and_predicts_their_mean(train_images_labels):
    images, labels = train_images_labels
    train_ds, eval_ds = _dataset(images[:256], labels[:256]), _dataset(images[256:320], labels[256:320])
    hparams = HParams(epochs=2, batch_size=32, ensemble=2, seed=5, precision="float32", distort=0.0)
    model, history = training.train(train_ds, eval_ds, hparams, strategy.choose_strategy("default"), 256)
    members = _members(model)
    assert len(members) == 2 and len(history["loss"]) == len(history["epoch_seconds"]) == 4
    x = {KEY: _pixels(images[:16])}
    by_member = [np.asarray(member(x, training=False)) for member in members]
    assert not np.allclose(by_member[0], by_member[1], atol=1e-3)  # seeds 5 and 6: two different models
    np.testing.assert_allclose(np.asarray(model(x, training=False)), np.mean(by_member, axis=0), atol=1e-6)
    assert 0.0 <= model.evaluate(eval_ds, verbose=0)[1] <= 1.0  # compiled: keras_baseline evaluates it


def test_one_model_is_returned_as_trained(train_images_labels):
    images, labels = train_images_labels
    train_ds, eval_ds = _dataset(images[:64], labels[:64]), _dataset(images[64:96], labels[64:96])
    hparams = HParams(epochs=1, batch_size=32, precision="float32")
    model, history = training.train(train_ds, eval_ds, hparams, strategy.choose_strategy("default"), 64)
    assert _members(model) == [] and len(history["loss"]) == 1
