"""create_pipeline: which TFX components exist and how they connect. Reads no globals."""
import os
from typing import Any, Dict, Optional, Sequence

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2  # PerSliceMetricThreshold is not re-exported
from tfx import v1 as tfx

from components.data_gate.component import DataGate
from components.idx_example_gen import component as idx_example_gen
from components.release.component import Release
from modules import features
from modules.model import HPARAMS_KEY
from modules.tuning import MAX_TRIALS_KEY

CODE_VERSION_KEY = "code_version"

TRAIN, EVAL, TEST = idx_example_gen.TRAIN_SPLIT, idx_example_gen.EVAL_SPLIT, idx_example_gen.TEST_SPLIT


def eval_config(min_accuracy: float, max_accuracy_drop: float) -> tfma.EvalConfig:
    """Metrics overall and per class (slices by label); the blessing rests on overall accuracy.

    Blessing: test accuracy must reach min_accuracy and may not fall more than max_accuracy_drop
    below the latest blessed model's. TFMA checks the change threshold only when a baseline
    exists, so the first run is judged on the lower bound alone. The thresholds are attached to
    the overall slice only: a threshold without slicing specs would apply to every per-class
    slice as well."""
    overall = tfma.SlicingSpec()
    blessing = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                                     absolute={"value": -max_accuracy_drop}))
    accuracy = tfma.MetricConfig(
        class_name="SparseCategoricalAccuracy",
        per_slice_thresholds=[config_pb2.PerSliceMetricThreshold(slicing_specs=[overall], threshold=blessing)])
    # Per-class precision and recall come from the (argmax) confusion matrix
    # (components/release/metrics.py): the same numbers as TFMA's Precision/Recall with
    # class_id and top_k=1, whose 20 metric configs doubled the Evaluator's time (7.1 -> 14.2 s
    # on the 10k test split, measured here).
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key=features.LABEL_KEY, signature_name="serving_default")],
        slicing_specs=[overall, tfma.SlicingSpec(feature_keys=[features.LABEL_KEY])],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"), accuracy,
            tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot")])])


def transform_component(examples, schema, preprocessing_fn: str, code_version: str = ""):
    """Transform as the pipeline runs it (benchmarks/scale_bench.py runs the same)."""
    return tfx.components.Transform(
        examples=examples,
        schema=schema,
        preprocessing_fn=preprocessing_fn,
        # Test stays raw: only the Evaluator reads it, through the model's own Transform graph.
        splits_config=tfx.proto.SplitsConfig(analyze=[TRAIN], transform=[TRAIN, EVAL]),
        custom_config={CODE_VERSION_KEY: code_version},
        # StatisticsGen and the gate already describe the raw data; Transform's own pre/post
        # statistics (TFDV over 784 features twice) nothing reads.
        disable_statistics=True,
    ).with_id("Transform")


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    serving_model_dir: str,
    model_name: str,
    preprocessing_fn: str,
    run_fn: str,
    hparams: Dict[str, Any],
    min_accuracy: float,
    max_accuracy_drop: float,
    label_drift_threshold: float,
    pixel_drift_threshold: float,
    beam_pipeline_args: Sequence[str],
    schema_file: Optional[str] = None,
    code_version: str = "",
    trainer_custom_config: Optional[Any] = None,
    evaluator_config: Optional[Any] = None,
    tuner_fn: Optional[str] = None,
    tuning_trials: int = 4,
    metadata_connection_config: Optional[Any] = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """schema_file: the curated schema; None infers one with SchemaGen (to regenerate the file).
    code_version: a fingerprint of modules/ (pipeline.code_version); a change re-runs Transform
    and Trainer instead of reusing their cached outputs.
    trainer_custom_config: replaces Trainer's custom_config ({hparams, code_version}); the
    Kubeflow runner passes a RuntimeParameter here so a run can change the hyperparameters.
    evaluator_config: replaces the EvalConfig built from min_accuracy and max_accuracy_drop
    (the Kubeflow runner passes a RuntimeParameter holding its JSON).
    tuner_fn: set to add a Tuner whose best hyperparameters override `hparams` in Trainer."""
    example_gen = idx_example_gen.create_idx_example_gen(data_root).with_id("IdxExampleGen")
    if schema_file:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file).with_id("ImportSchemaGen")
        # With the schema, statistics treat the label as categorical (needed for its L-infinity drift).
        statistics_gen = tfx.components.StatisticsGen(
            examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"]).with_id("StatisticsGen")
    else:
        statistics_gen = tfx.components.StatisticsGen(
            examples=example_gen.outputs["examples"]).with_id("StatisticsGen")
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True).with_id("SchemaGen")
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"]).with_id("ExampleValidator")
    data_gate = DataGate(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        # Drift baseline: the statistics of the last span that passed (none on the first run).
        baseline_uri=os.path.join(pipeline_root, "validated_statistics_baseline"),
        label_drift_threshold=label_drift_threshold,
        pixel_drift_threshold=pixel_drift_threshold,
    ).with_id("DataGate")
    transform = transform_component(example_gen.outputs["examples"], schema_gen.outputs["schema"],
                                    preprocessing_fn, code_version)
    # No data flows from the gate to Transform: the edge only orders them, so a failed gate
    # stops everything from Transform on.
    transform.add_upstream_node(data_gate)
    tuner = None
    if tuner_fn:
        tuner = tfx.components.Tuner(
            tuner_fn=tuner_fn,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(splits=[TRAIN]),
            eval_args=tfx.proto.EvalArgs(splits=[EVAL]),
            custom_config={HPARAMS_KEY: dict(hparams), MAX_TRIALS_KEY: tuning_trials, CODE_VERSION_KEY: code_version},
        ).with_id("Tuner")
    trainer = tfx.components.Trainer(
        run_fn=run_fn,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[TRAIN]),
        eval_args=tfx.proto.EvalArgs(splits=[EVAL]),
        custom_config=trainer_custom_config or {HPARAMS_KEY: dict(hparams), CODE_VERSION_KEY: code_version},
    ).with_id("Trainer")
    baseline_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("LatestBlessedModelResolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=evaluator_config or eval_config(min_accuracy, max_accuracy_drop),
        example_splits=[TEST],
    ).with_id("Evaluator")
    # In the Pusher's place: only blessed models, complete or not at all, with TFLite and model card.
    pusher = Release(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        push_base_dir=serving_model_dir,
        model_name=model_name,
    ).with_id("Pusher")
    components = [example_gen, schema_gen, statistics_gen, example_validator, data_gate, transform,
                  tuner, trainer, baseline_resolver, evaluator, pusher]
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[c for c in components if c is not None],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
