"""The exported SavedModel: signatures, dtypes, shapes, and loading with TensorFlow alone."""

import json
import subprocess
import sys

import numpy as np
import pytest

from components.idx_example_gen.executor import to_example
from modules import cnn, export, features, signatures
from modules.hparams import HParams
from serving.clients.images import png
from tests.timeouts import COMMAND_TIMEOUT

# Runs in a fresh interpreter that imports only TensorFlow: no TFT, no Keras import by us.
_LOAD_ONLY_TF = """
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
examples = tf.constant([bytes.fromhex(h) for h in json.loads(sys.argv[2])])
images = tf.constant(json.loads(sys.argv[3]), tf.uint8)
pictures = tf.constant([bytes.fromhex(h) for h in json.loads(sys.argv[4])])
out = {}
for name, fn in loaded.signatures.items():
    inputs = {k: [str(v.dtype.name), v.shape.as_list()] for k, v in fn.structured_input_signature[1].items()}
    given = {"images": images, "pictures": pictures, "targets": tf.constant([1, 2, 3, 4], tf.int64)}
    result = fn(**{k: given.get(k, examples) for k in inputs})
    out[name] = {"inputs": inputs, "outputs": {k: [str(v.dtype.name), v.shape.as_list()] for k, v in result.items()},
                 "values": {k: (v.numpy().astype(str) if v.dtype == tf.string else v.numpy()).tolist()
                            for k, v in result.items()}}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory, transform_output, few_images):
    model = cnn.build_model(HParams(), steps_per_epoch=10)
    path = str(tmp_path_factory.mktemp("export"))
    export.export_serving_model(model, transform_output, path)
    images, labels = few_images
    serialized = [to_example(img, lab, "t10k").SerializeToString() for img, lab in zip(images[:4], labels[:4])]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _LOAD_ONLY_TF,
            path,
            json.dumps([s.hex() for s in serialized]),
            json.dumps(images[:4].tolist()),
            json.dumps([png(img).hex() for img in images[:4]]),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=COMMAND_TIMEOUT,
    )
    return model, images[:4], json.loads(result.stdout.strip().splitlines()[-1]), path


def test_signature_names_and_types(exported):
    _, _, sigs, _ = exported
    assert set(sigs) == {
        signatures.SERVING_SIGNATURE,
        signatures.IMAGES_SIGNATURE,
        signatures.PICTURES_SIGNATURE,
        signatures.CLASSIFY_SIGNATURE,
        signatures.TRANSFORM_SIGNATURE,
        signatures.EXPLAIN_SIGNATURE,
        signatures.EXPLAIN_TARGETS_SIGNATURE,
    }
    for name in signatures.EXPLAIN_SIGNATURES:
        assert sigs[name]["outputs"][signatures.ATTRIBUTIONS_OUTPUT] == ["float32", [4, 28, 28]]
    assert sigs[signatures.EXPLAIN_TARGETS_SIGNATURE]["inputs"][signatures.TARGETS_INPUT] == ["int64", [None]]
    assert sigs[signatures.EXPLAIN_TARGETS_SIGNATURE]["values"][signatures.TARGETS_OUTPUT] == [1, 2, 3, 4]
    classify = sigs[signatures.CLASSIFY_SIGNATURE]
    assert classify["inputs"] == {signatures.CLASSIFY_INPUTS: ["string", [None]]}
    assert classify["outputs"] == {
        signatures.CLASSIFY_CLASSES: ["string", [4, features.NUM_CLASSES]],
        signatures.CLASSIFY_SCORES: ["float32", [4, features.NUM_CLASSES]],
    }
    assert (
        classify["values"][signatures.CLASSIFY_SCORES] == sigs[signatures.SERVING_SIGNATURE]["values"]["probabilities"]
    )
    serving = sigs[signatures.SERVING_SIGNATURE]
    assert serving["inputs"] == {signatures.EXAMPLES_INPUT: ["string", [None]]}
    assert serving["outputs"] == {signatures.PROBABILITIES_OUTPUT: ["float32", [4, features.NUM_CLASSES]]}
    images = sigs[signatures.IMAGES_SIGNATURE]
    assert images["inputs"] == {signatures.IMAGES_INPUT: ["uint8", [None, features.IMAGE_HEIGHT, features.IMAGE_WIDTH]]}
    assert images["outputs"] == {
        signatures.PROBABILITIES_OUTPUT: ["float32", [4, features.NUM_CLASSES]],
        signatures.CLASSES_OUTPUT: ["int64", [4]],
    }
    pictures = sigs[signatures.PICTURES_SIGNATURE]
    assert pictures["inputs"] == {signatures.PICTURES_INPUT: ["string", [None]]}
    assert pictures["outputs"] == {
        signatures.PROBABILITIES_OUTPUT: ["float32", [4, features.NUM_CLASSES]],
        signatures.CLASSES_OUTPUT: ["int64", [4]],
        signatures.SEEN_IMAGES_OUTPUT: ["uint8", [4, features.IMAGE_HEIGHT, features.IMAGE_WIDTH]],
        signatures.DIGIT_FOUND_OUTPUT: ["bool", [4]],
    }
    assert pictures["values"][signatures.DIGIT_FOUND_OUTPUT] == [True] * 4
    transformed = sigs[signatures.TRANSFORM_SIGNATURE]["outputs"]
    assert transformed[features.transformed_name(features.IMAGE_KEY)] == ["float32", [4, features.NUM_PIXELS]]


def test_serving_matches_the_keras_model_on_scaled_pixels(exported):
    """serving_default applies the Transform graph itself: no training/serving skew."""
    model, images, sigs, _ = exported
    direct = model.predict({features.transformed_name(features.IMAGE_KEY): images.reshape(4, -1) / 255.0}, verbose=0)
    np.testing.assert_allclose(
        np.array(sigs[signatures.SERVING_SIGNATURE]["values"]["probabilities"]), direct, atol=1e-5
    )


def test_image_signature_gives_the_same_outputs_as_serving_default(exported):
    _, _, sigs, _ = exported
    by_examples = np.array(sigs[signatures.SERVING_SIGNATURE]["values"][signatures.PROBABILITIES_OUTPUT])
    by_images = sigs[signatures.IMAGES_SIGNATURE]["values"]
    np.testing.assert_array_equal(np.array(by_images[signatures.PROBABILITIES_OUTPUT]), by_examples)
    assert by_images[signatures.CLASSES_OUTPUT] == by_examples.argmax(axis=1).tolist()


def test_a_mixed_precision_model_is_exported_in_float32_with_the_same_weights(few_images):
    model = cnn.build_model(HParams(), steps_per_epoch=10, dtype_policy="mixed_bfloat16")
    copy = export.float32_copy(model)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), copy.get_weights()))
    images = {features.transformed_name(features.IMAGE_KEY): few_images[0][:8].reshape(8, -1) / 255.0}
    np.testing.assert_allclose(copy.predict(images, verbose=0), model.predict(images, verbose=0), atol=2e-2)
    float_model = cnn.build_model(HParams(), steps_per_epoch=10)
    assert export.float32_copy(float_model) is float_model


def test_a_mixed_precision_ensemble_is_exported_with_every_member_in_float32(few_images):
    members = [cnn.build_model(HParams(), steps_per_epoch=10, dtype_policy="mixed_bfloat16") for _ in range(2)]
    model = cnn.averaged(members)
    copy = export.float32_copy(model)
    assert export.computes_in_float32(copy) and not export.computes_in_float32(model)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), copy.get_weights()))
    images = {features.transformed_name(features.IMAGE_KEY): few_images[0][:8].reshape(8, -1) / 255.0}
    np.testing.assert_allclose(copy.predict(images, verbose=0), model.predict(images, verbose=0), atol=2e-2)


def test_an_exported_ensemble_serves_the_mean_of_its_members(tmp_path, transform_output, few_images):
    import tensorflow as tf

    members = [cnn.build_model(HParams(), steps_per_epoch=10) for _ in range(2)]  # two random initialisations
    export.export_serving_model(cnn.averaged(members), transform_output, str(tmp_path))
    images = few_images[0][:8]
    served = tf.saved_model.load(str(tmp_path)).signatures[signatures.IMAGES_SIGNATURE](images=tf.constant(images))
    x = {features.transformed_name(features.IMAGE_KEY): images.reshape(8, -1) / 255.0}
    mean = np.mean([member.predict(x, verbose=0) for member in members], axis=0)
    np.testing.assert_allclose(served[signatures.PROBABILITIES_OUTPUT].numpy(), mean, atol=1e-5)


def test_training_record_travels_in_assets_extra(tmp_path):
    record = {"hparams": HParams().to_dict(), "history": {"loss": [0.5, 0.25]}}
    export.write_training_record(str(tmp_path), record)
    assert (tmp_path / "assets.extra" / "training.json").is_file()
    assert export.read_training_record(str(tmp_path)) == record
    assert export.read_training_record(str(tmp_path / "elsewhere")) == {}


def test_the_classify_signature_is_marked_for_tf_servings_classify_api(exported):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(f"{exported[3]}/saved_model.pb", "rb") as f:
        saved_model.ParseFromString(f.read())
    methods = {name: sig.method_name for name, sig in saved_model.meta_graphs[0].signature_def.items()}
    assert methods[signatures.CLASSIFY_SIGNATURE] == signatures.CLASSIFY_METHOD
    assert methods[signatures.SERVING_SIGNATURE] == signatures.PREDICT_METHOD
