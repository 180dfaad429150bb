"""create_pipeline: which TFX components exist and how they connect. Reads no globals."""

import os
from typing import Any, Mapping, Optional, Sequence, Union

from tfx import v1 as tfx

from components.data_gate.component import DataGate
from components.idx_example_gen import component as idx_example_gen
from components.release.component import Release
from modules.features import EVAL_SPLIT as EVAL
from modules.features import TEST_SPLIT as TEST
from modules.features import TRAIN_SPLIT as TRAIN
from modules.hparams import CODE_VERSION_KEY, MAX_TRIALS_KEY
from pipeline.configs import ATTACK_EXAMPLES

# A value fixed at compile time, or a RuntimeParameter that a Kubeflow run sets.
Configurable = Union[Any, tfx.dsl.experimental.RuntimeParameter]


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


def add_component_beam_args(components: list, component_beam_args: Optional[Mapping[str, Sequence[str]]]) -> list:
    """Adds each component's own Beam args (by id) after the pipeline's; returns components."""
    beam_components = {c.id: c for c in components if hasattr(c, "with_beam_pipeline_args")}
    for component_id, args in (component_beam_args or {}).items():
        if component_id not in beam_components:
            raise ValueError(f"no Beam component {component_id!r} in the pipeline; there are {sorted(beam_components)}")
        beam_components[component_id].with_beam_pipeline_args(list(args))
    return components


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    serving_model_dir: str,
    model_name: str,
    preprocessing_fn: str,
    run_fn: str,
    trainer_custom_config: Configurable,
    eval_config: Configurable,
    label_drift_threshold: float,
    pixel_drift_threshold: float,
    beam_pipeline_args: Sequence[str],
    component_beam_args: Optional[Mapping[str, Sequence[str]]] = None,
    schema_file: Optional[str] = None,
    code_version: str = "",
    tuner_fn: Optional[str] = None,
    tuning_trials: Optional[int] = None,
    metadata_connection_config: Optional[Any] = None,
    enable_cache: bool = True,
    attack_examples: int = ATTACK_EXAMPLES,
    formats: str = "all",
) -> tfx.dsl.Pipeline:
    """trainer_custom_config: Trainer's custom_config (modules.hparams.custom_config: hyperparameters
    and code version), or a RuntimeParameter holding its JSON (Kubeflow: a run can change it).
    eval_config: the Evaluator's tfma.EvalConfig (pipeline.blessing.eval_config: metrics and the
    blessing thresholds), or a RuntimeParameter holding its JSON.
    component_beam_args: Beam args added for one component (by id) after the pipeline's, which
    they override: for example each Beam stage on its own worker pool or Dataflow machine type.
    schema_file: the curated schema; None infers one with SchemaGen (to regenerate the file).
    code_version: a fingerprint of modules/ (pipeline.code_version); a change re-runs Transform
    instead of reusing its cached output (Trainer's is inside trainer_custom_config).
    tuner_fn, tuning_trials: add a Tuner trying that many points; its best hyperparameters override
    trainer_custom_config's in Trainer (needs a fixed trainer_custom_config, not a RuntimeParameter).
    attack_examples: the test digits the release attacks for its adversarial table (0: none).
    formats: the formats the release converts beside the SavedModel: all, none or a comma-separated
    list (modules/push_layout.requested_formats)."""
    example_gen = idx_example_gen.create_idx_example_gen(data_root).with_id("IdxExampleGen")
    if schema_file:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file).with_id("ImportSchemaGen")
        # With the schema, statistics treat the label as categorical (needed for its L-infinity drift).
        statistics_gen = tfx.components.StatisticsGen(
            examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"]
        ).with_id("StatisticsGen")
    else:
        statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id("StatisticsGen")
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
        ).with_id("SchemaGen")
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id("ExampleValidator")
    data_gate = DataGate(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        # Drift baseline: the statistics of the last span that passed (none on the first run).
        baseline_uri=os.path.join(pipeline_root, "validated_statistics_baseline"),
        label_drift_threshold=label_drift_threshold,
        pixel_drift_threshold=pixel_drift_threshold,
    ).with_id("DataGate")
    transform = transform_component(
        example_gen.outputs["examples"], schema_gen.outputs["schema"], preprocessing_fn, code_version
    )
    # No data flows from the gate to Transform: the edge only orders them, so a failed gate
    # stops everything from Transform on.
    transform.add_upstream_node(data_gate)
    tuner = None
    if tuner_fn:
        if not isinstance(trainer_custom_config, dict) or not tuning_trials:
            raise ValueError("a Tuner needs trainer_custom_config as a dict and tuning_trials > 0")
        tuner = tfx.components.Tuner(
            tuner_fn=tuner_fn,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(splits=[TRAIN]),
            eval_args=tfx.proto.EvalArgs(splits=[EVAL]),
            custom_config={**trainer_custom_config, MAX_TRIALS_KEY: tuning_trials},
        ).with_id("Tuner")
    trainer = tfx.components.Trainer(
        run_fn=run_fn,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[TRAIN]),
        eval_args=tfx.proto.EvalArgs(splits=[EVAL]),
        custom_config=trainer_custom_config,
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
        eval_config=eval_config,
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
        attack_examples=attack_examples,
        formats=formats,
    ).with_id("Pusher")
    components = [
        example_gen,
        schema_gen,
        statistics_gen,
        example_validator,
        data_gate,
        transform,
        tuner,
        trainer,
        baseline_resolver,
        evaluator,
        pusher,
    ]
    components = add_component_beam_args([c for c in components if c is not None], component_beam_args)
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
