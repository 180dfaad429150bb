"""What the Evaluator measures and what blesses a model: the EvalConfig, built from two numbers."""

# The protos themselves: `import tensorflow_model_analysis` alone does not export EvalConfig (its
# top-level aliases appear only once tfx has imported TFMA's sdk module).
from tensorflow_model_analysis.proto import config_pb2

from components.release.metrics import ACCURACY_CLASS
from modules import features
from modules.signatures import SERVING_SIGNATURE


def eval_config(min_accuracy: float, max_accuracy_drop: float) -> config_pb2.EvalConfig:
    """Metrics overall and per class (slices by label); the blessing rests on overall accuracy.

    Blessing: test accuracy must reach min_accuracy and may not fall more than max_accuracy_drop
    below the latest blessed model's. TFMA checks the change threshold only when a baseline
    exists, so the first run is judged on the lower bound alone. The thresholds are attached to
    the overall slice only: a threshold without slicing specs would apply to every per-class
    slice as well."""
    overall = config_pb2.SlicingSpec()
    blessing = config_pb2.MetricThreshold(
        value_threshold=config_pb2.GenericValueThreshold(lower_bound={"value": min_accuracy}),
        change_threshold=config_pb2.GenericChangeThreshold(
            direction=config_pb2.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_accuracy_drop}
        ),
    )
    accuracy = config_pb2.MetricConfig(
        class_name=ACCURACY_CLASS,
        per_slice_thresholds=[config_pb2.PerSliceMetricThreshold(slicing_specs=[overall], threshold=blessing)],
    )
    # Per-class precision and recall come from the (argmax) confusion matrix
    # (components/release/metrics.py): the same numbers as TFMA's Precision/Recall with
    # class_id and top_k=1, whose 20 metric configs doubled the Evaluator's time (7.1 -> 14.2 s
    # on the 10k test split, measured here).
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(label_key=features.LABEL_KEY, signature_name=SERVING_SIGNATURE)],
        slicing_specs=[overall, config_pb2.SlicingSpec(feature_keys=[features.LABEL_KEY])],
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
