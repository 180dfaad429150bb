import importlib.util
import sys

import pytest

if importlib.util.find_spec("kfp") is None:
    # kubeflow/runner.py says the same to a user (require_kfp).
    pytest.skip(
        f"TFX 1.21 installs kfp only on Python 3.10 and 3.11 (this is {sys.version_info.major}."
        f"{sys.version_info.minor}): nothing here can compile for Kubeflow",
        allow_module_level=True,
    )

from kubeflow import runner

IMAGE = "registry.example/mnist-tfx:test"


@pytest.fixture(scope="session")
def compiled(tmp_path_factory, small_data_root):
    """pipeline.yaml compiled as a platform team would, with a local root so tasks can run here."""
    root = tmp_path_factory.mktemp("kfp")
    args = runner.parse_args(
        [
            "--image",
            IMAGE,
            "--pipeline-root",
            str(root / "pipeline_root"),
            "--data-root",
            small_data_root,
            "--serving-dir",
            str(root / "serving"),
            "--output",
            str(root / "pipeline.yaml"),
        ]
    )
    return runner.compile_pipeline(args)
