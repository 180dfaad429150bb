"""The served model's interface: signature, input and output names. No TensorFlow import, so
clients and servers can know the contract without loading the model's libraries."""

SERVING_SIGNATURE = "serving_default"  # serialized tf.Example -> probabilities
IMAGES_SIGNATURE = "predict_images"  # uint8 [batch, 28, 28] -> probabilities, classes
TRANSFORM_SIGNATURE = "transform_features"  # serialized tf.Example -> transformed features (Evaluator)

EXAMPLES_INPUT = "examples"
IMAGES_INPUT = "images"
PROBABILITIES_OUTPUT = "probabilities"
CLASSES_OUTPUT = "classes"
