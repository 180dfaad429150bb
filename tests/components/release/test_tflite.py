"""The quantized TFLite model: converts from the float32 export and predicts like the SavedModel."""

import os

import numpy as np
import tensorflow as tf

from components.release import tflite
from modules import push_layout, signatures


def test_tflite_is_smaller_and_agrees_with_the_savedmodel(tmp_path, exported_model, test_images_labels):
    images, labels = test_images_labels
    images, labels = images[:1000], labels[:1000]
    path = str(tmp_path / push_layout.TFLITE_FILE)
    size = tflite.convert(exported_model, path)
    assert size == os.path.getsize(path)
    saved_model_bytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(exported_model) for f in fs)
    assert size < saved_model_bytes / 2  # int8 weights
    by_tflite = tflite.predict_classes(path, images)
    signature = tf.saved_model.load(exported_model).signatures[signatures.IMAGES_SIGNATURE]
    by_saved_model = signature(images=tf.constant(images))[signatures.CLASSES_OUTPUT].numpy()
    assert np.mean(by_tflite == by_saved_model) >= 0.99
    assert abs(tflite.accuracy(path, images, labels) - np.mean(by_saved_model == labels)) <= 0.01
