"""What the Evaluator measures and what blesses a model: the EvalConfig, built from a few numbers."""

# The protos themselves: `import tensorflow_model_analysis` alone does not export EvalConfig (its
# top-level aliases appear only once tfx has imported TFMA's sdk module).
from tensorflow_model_analysis.proto import config_pb2

from components.release.metrics import ACCURACY_CLASS
from modules import features, idx
from modules.signatures import SERVING_SIGNATURE

# The slices of the test split, by the IDX pair each example came from (features.SOURCE_KEY).
MNIST_TEST_SLICE = config_pb2.SlicingSpec(feature_values={features.SOURCE_KEY: idx.TEST_PAIR})
FRESH_SLICE = config_pb2.SlicingSpec(feature_values={features.SOURCE_KEY: idx.FRESH_PAIR})
# "Better on the fresh rows": TFMA passes a change when candidate - baseline >= this; accuracies
# differ by multiples of 1/rows, so any positive bound below that means strictly better.
FRESH_MIN_GAIN = 1e-9


def eval_config(min_accuracy: float, max_accuracy_drop: float, fresh_window: bool = False) -> config_pb2.EvalConfig:
    """Metrics per source of the test split and per class within it; the blessing rests on accuracy.

    Blessing, on the MNIST test rows (source t10k): accuracy must reach min_accuracy and may not
    fall more than max_accuracy_drop below the latest blessed model's. With fresh_window (the data
    is a span made from production feedback, modules.idx.has_fresh_pair), also: accuracy on the
    held-out fresh rows (source t10k-fresh) strictly above the latest blessed model's. TFMA checks a
    change threshold only when a baseline exists, so a first run is judged on the lower bound alone;
    a threshold whose slice has no rows fails the blessing, so the fresh one is there only when the
    span has fresh rows. Thresholds name their slices: one without slicing specs would apply to
    every per-class slice as well."""
    not_worse = config_pb2.MetricThreshold(
        value_threshold=config_pb2.GenericValueThreshold(lower_bound={"value": min_accuracy}),
        change_threshold=config_pb2.GenericChangeThreshold(
            direction=config_pb2.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_accuracy_drop}
        ),
    )
    thresholds = [config_pb2.PerSliceMetricThreshold(slicing_specs=[MNIST_TEST_SLICE], threshold=not_worse)]
    if fresh_window:
        better = config_pb2.MetricThreshold(
            change_threshold=config_pb2.GenericChangeThreshold(
                direction=config_pb2.MetricDirection.HIGHER_IS_BETTER, absolute={"value": FRESH_MIN_GAIN}
            )
        )
        thresholds.append(config_pb2.PerSliceMetricThreshold(slicing_specs=[FRESH_SLICE], threshold=better))
    accuracy = config_pb2.MetricConfig(class_name=ACCURACY_CLASS, per_slice_thresholds=thresholds)
    # Per-class precision and recall come from the (argmax) confusion matrix
    # (components/release/metrics.py): the same numbers as TFMA's Precision/Recall with
    # class_id and top_k=1, whose 20 metric configs doubled the Evaluator's time on the 10k
    # test split.
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(label_key=features.LABEL_KEY, signature_name=SERVING_SIGNATURE)],
        slicing_specs=[
            config_pb2.SlicingSpec(feature_keys=[features.SOURCE_KEY]),
            config_pb2.SlicingSpec(feature_keys=[features.SOURCE_KEY, features.LABEL_KEY]),
        ],
        metrics_specs=[
            config_pb2.MetricsSpec(
                metrics=[
                    config_pb2.MetricConfig(class_name="ExampleCount"),
                    accuracy,
                    config_pb2.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            )
        ],
    )
