"""The one home of feature keys and shapes: ExampleGen, Transform, model, Evaluator and serving import it."""

IMAGE_KEY = "image"
LABEL_KEY = "label"
# The IDX pair an example was read from (its file name before the images/labels marker: "train",
# "t10k", "t10k-fresh"): the Evaluator slices the test split by it. Like the label, never served.
SOURCE_KEY = "source"
NOT_SERVED_KEYS = (LABEL_KEY, SOURCE_KEY)

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH
NUM_CLASSES = 10
MAX_PIXEL_VALUE = 255


def transformed_name(key: str) -> str:
    """Name of a feature after Transform; the suffix keeps raw and transformed keys apart."""
    return f"{key}_xf"


# The splits IdxExampleGen writes: train and eval from MNIST's training file (by hash), test from
# its test file (and, in a span made from production feedback, the held-out fresh rows). Trainer
# reads train/eval; only the Evaluator and the release read test.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
TEST_SPLIT = "test"
