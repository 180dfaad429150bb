"""The served model's interface: signature, input and output names. No TensorFlow import, so
clients and servers can know the contract without loading the model's libraries."""

SERVING_SIGNATURE = "serving_default"  # serialized tf.Example -> probabilities
IMAGES_SIGNATURE = "predict_images"  # uint8 [batch, 28, 28] -> probabilities, classes
PICTURES_SIGNATURE = "predict_pictures"  # encoded PNG/JPEG/BMP [batch] -> ... and the 28x28 seen
TRANSFORM_SIGNATURE = "transform_features"  # serialized tf.Example -> transformed features (Evaluator)
# Integrated gradients (modules/attributions.py): uint8 [batch, 28, 28] -> probabilities, classes and
# attributions [batch, 28, 28] of the predicted class; ..._for takes the class per row as `targets`.
EXPLAIN_SIGNATURE = "explain_images"
EXPLAIN_TARGETS_SIGNATURE = "explain_images_for"
TARGETS_INPUT = "targets"
ATTRIBUTIONS_OUTPUT = "attributions"
TARGETS_OUTPUT = "targets"  # the class each row's attributions explain
EXPLAIN_SIGNATURES = (EXPLAIN_SIGNATURE, EXPLAIN_TARGETS_SIGNATURE)
# What the explain signature (and serving.server, before batching) answer to bad targets.
TARGETS_RANGE_REFUSED = "targets must be classes 0 to 9"
TARGETS_COUNT_REFUSED = "targets must hold one class per image"

EXAMPLES_INPUT = "examples"
IMAGES_INPUT = "images"
PICTURES_INPUT = "pictures"
# The SavedModel's predict_transformed_uncalibrated function (not a signature) takes the Transform's
# image feature.
TRANSFORMED_INPUT = "transformed"
# predict_pictures' outputs beside probabilities and classes: the 28x28 image the model saw, and
# whether the picture held ink at all (no digit: classes is NO_DIGIT_CLASS).
SEEN_IMAGES_OUTPUT = "images"
DIGIT_FOUND_OUTPUT = "digit_found"
NO_DIGIT_CLASS = -1
PROBABILITIES_OUTPUT = "probabilities"
# A prediction whose top probability is below this is low-confidence: counted by the server's
# metrics and the monitor, and reported per model in release.json and the model card.
DEFAULT_LOW_CONFIDENCE_BOUND = 0.5
CLASSES_OUTPUT = "classes"

# TF Serving's Classify API: a signature of method `tensorflow/serving/classify` taking serialized
# tf.Examples as `inputs` and answering `classes` (the labels, as strings) and `scores`.
CLASSIFY_SIGNATURE = "classify"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES = "classes"
CLASSIFY_SCORES = "scores"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
