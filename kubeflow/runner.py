"""Compiles the pipeline for Kubeflow Pipelines v2 into a PipelineSpec YAML.

    python -m kubeflow.runner --image REGISTRY/mnist-tfx:TAG --pipeline-root gs://BUCKET/root \
        --data-root gs://BUCKET/mnist --serving-dir /mnt/serving/mnist --output pipeline.yaml

The same create_pipeline(...) as the local runner; what differs is only where things live
(object storage), the image, the metadata (KFP's own) and the Beam args. Every flag can also
be set by an environment variable (MNIST_TFX_IMAGE, MNIST_TFX_PIPELINE_ROOT, ...).
"""

import argparse
import json
import os
import sys

import yaml
from google.protobuf import json_format
from tfx import v1 as tfx

from modules import hparams as hparams_lib
from modules import push_layout
from pipeline import code_version, configs
from pipeline.blessing import eval_config
from pipeline.dag import create_pipeline

# Where kubeflow/Dockerfile copies the curated schema inside the image (the code itself is the
# project's wheel, installed in site-packages): the same relative path as in this checkout.
IMAGE_PROJECT_DIR = "/mnist-tfx"
IMAGE_SCHEMA_FILE = os.path.join(IMAGE_PROJECT_DIR, os.path.relpath(configs.SCHEMA_FILE, configs.PROJECT_ROOT))

# Runtime parameters, so a run can change them without recompiling: the Trainer's custom_config
# as JSON (epochs, batch size, strategy or any other HParams field) and the Evaluator's EvalConfig
# as JSON (the accuracy bound; kubeflow/schedule.py builds it from --min-accuracy).
TRAINER_CONFIG_PARAMETER = "trainer_custom_config"
EVAL_CONFIG_PARAMETER = "eval_config"


def _env(name: str, default=None):
    return os.environ.get(f"MNIST_TFX_{name}", default)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, env, help_text in (
        ("--image", "IMAGE", "the image built from kubeflow/Dockerfile"),
        ("--pipeline-root", "PIPELINE_ROOT", "gs://, s3:// or minio:// folder for artifacts"),
        ("--data-root", "DATA_ROOT", "folder of span-N/ IDX folders"),
        ("--serving-dir", "SERVING_DIR", "Pusher's base directory on a mounted volume TF Serving also mounts"),
    ):  # required unless the environment gives them
        p.add_argument(flag, default=_env(env), required=_env(env) is None, help=f"{help_text} (env MNIST_TFX_{env})")
    p.add_argument(
        "--beam-arg",
        action="append",
        dest="beam_args",
        help="Beam pipeline arg, repeatable, e.g. --beam-arg=--runner=DataflowRunner "
        f"(default: {' '.join(configs.BEAM_PIPELINE_ARGS)}, in-process in each task)",
    )
    p.add_argument(
        "--schema-file",
        default=_env("SCHEMA_FILE", IMAGE_SCHEMA_FILE),
        help="the curated schema as the tasks see it (default: its path inside the image)",
    )
    p.add_argument(
        "--min-accuracy",
        type=float,
        default=float(_env("MIN_ACCURACY", configs.MIN_ACCURACY)),
        help="the default of the eval_config runtime parameter's accuracy bound",
    )
    p.add_argument(
        "--attack-examples",
        type=int,
        default=int(_env("ATTACK_EXAMPLES", configs.ATTACK_EXAMPLES)),
        help="test digits the release attacks for its adversarial table, 0 for none",
    )
    p.add_argument(
        "--formats",
        default=_env("FORMATS", "all"),
        help=f"what the release converts beside the SavedModel: all, none, or some of {','.join(push_layout.FORMATS)}",
    )
    p.add_argument(
        "--output",
        default=_env("OUTPUT", "pipeline.yaml"),
        help="a .yaml PipelineSpec: what kfp.Client uploads and the kfp SDK loads",
    )
    args = p.parse_args(argv)
    if "://" in args.serving_dir:
        p.error(
            f"--serving-dir {args.serving_dir}: the push directory must be a mounted file system (a "
            "PersistentVolumeClaim TF Serving also mounts); object stores have no atomic rename"
        )
    try:
        push_layout.requested_formats(args.formats)
    except ValueError as error:
        p.error(f"--formats {error}")
    return args


def trainer_config_json(hparams: hparams_lib.HParams) -> str:
    return json.dumps(hparams_lib.custom_config(hparams.to_dict(), code_version.fingerprint()))


def eval_config_json(min_accuracy: float, fresh_window: bool = False) -> str:
    """fresh_window: runs on spans made from production feedback (python -m monitoring.span), which
    bless a model only if it beats the served one on the span's held-out fresh rows; a run whose
    span has none must not have it (pipeline/blessing.py)."""
    return json_format.MessageToJson(eval_config(min_accuracy, configs.MAX_ACCURACY_DROP, fresh_window))


def runtime_defaults(args: argparse.Namespace) -> dict:
    return {
        TRAINER_CONFIG_PARAMETER: trainer_config_json(hparams_lib.HParams()),
        EVAL_CONFIG_PARAMETER: eval_config_json(args.min_accuracy),
    }


def build(args: argparse.Namespace):
    defaults = runtime_defaults(args)
    trainer_config, evaluator_config = (
        tfx.dsl.experimental.RuntimeParameter(name=name, ptype=str, default=defaults[name])
        for name in (TRAINER_CONFIG_PARAMETER, EVAL_CONFIG_PARAMETER)
    )
    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME.replace("_", "-"),  # KFP names: lowercase and dashes
        pipeline_root=args.pipeline_root,
        data_root=args.data_root,
        serving_model_dir=args.serving_dir,
        model_name=configs.MODEL_NAME,
        preprocessing_fn=configs.PREPROCESSING_FN,
        run_fn=configs.RUN_FN,
        trainer_custom_config=trainer_config,
        eval_config=evaluator_config,
        label_drift_threshold=configs.LABEL_DRIFT_LINF,
        pixel_drift_threshold=configs.PIXEL_DRIFT_JSD,
        beam_pipeline_args=args.beam_args or configs.BEAM_PIPELINE_ARGS,
        schema_file=args.schema_file,
        code_version=code_version.fingerprint(),
        attack_examples=args.attack_examples,
        formats=args.formats,
    )


def require_kfp() -> None:
    """TFX 1.21 installs kfp (tfx[kfp]) only on Python 3.10 and 3.11, and offers its
    KubeflowV2DagRunner only where kfp imports."""
    if not hasattr(tfx.orchestration.experimental, "KubeflowV2DagRunner"):
        raise SystemExit(
            "compiling for Kubeflow needs the kfp package, which TFX 1.21 installs (tfx[kfp]) only on "
            f"Python 3.10 and 3.11; this is Python {sys.version_info.major}.{sys.version_info.minor}. "
            "Make the virtualenv with Python 3.11: rm -rf .venv; PYTHON=python3.11 ./bootstrap.sh"
        )


def compile_pipeline(args: argparse.Namespace) -> str:
    require_kfp()
    output = os.path.abspath(args.output)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        # Spec 2.1: the task entrypoint reads KFP 2.x's parameterValues (with 2.0 it reads only the
        # deprecated `parameters` field and every exec property arrives empty).
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=args.image, use_pipeline_spec_2_1=True
        ),
        output_dir=os.path.dirname(output),
        output_filename=os.path.basename(output),
    )
    runner.run(build(args))
    add_parameter_defaults(output, runtime_defaults(args))
    return output


def add_parameter_defaults(spec_path: str, defaults: dict) -> None:
    """TFX 1.21 writes RuntimeParameter defaults only into a PipelineJob's runtimeConfig (.json
    output); in the bare PipelineSpec YAML that kfp.Client uploads they would be missing and every
    run would have to pass them. Adds them where KFP v2 reads defaults: the root's input spec."""
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name, value in defaults.items():
        parameters[name].update(defaultValue=value, isOptional=True)
    with open(spec_path, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False)


def main(argv=None) -> int:
    print(compile_pipeline(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
