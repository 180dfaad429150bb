"""The Trainer profile's op trace on real training steps: time lands on the model's layer types and
passes, and the Keras and fused batch norms show up as such."""

import dataclasses

import pytest

from benchmarks import trainer_profile
from modules.hparams import HParams


@pytest.mark.parametrize("fused", [False, True])
def test_op_profile_splits_time_by_layer_and_pass(train_images_labels, fused):
    images, labels = (a[:512] for a in train_images_labels)
    variant = trainer_profile.Variant("v", dataclasses.replace(HParams(), batch_size=64), fused_batch_norm=fused)
    model = trainer_profile.build(variant, 8)
    ops = trainer_profile.op_profile(model, trainer_profile.make_dataset(images, labels, variant), 6)
    assert ops["op_seconds"] > 0
    assert sum(ops["by_pass"].values()) == pytest.approx(1.0, abs=0.01)
    assert ops["by_pass"]["backward"] > ops["by_pass"]["forward"] > 0
    assert ops["by_layer"]["conv2d"] > 0.1 and ops["by_layer"]["batch_normalization"] > 0
    # The fused kernel replaces Keras's elementwise batch norm ops.
    assert any(op.startswith("FusedBatchNorm") for op in ops["by_op"]) == fused
