"""Installs mnist-tfx as a package so TFX imports user code by dotted path.

`pip install -e .[test]` (what `make test` does) makes `modules.model.run_fn` and
`modules.preprocessing.preprocessing_fn` importable in the local runner, in Beam
workers and in the Kubeflow image alike.
"""

from setuptools import find_packages, setup

setup(
    name="mnist-tfx",
    version="0.1.0",
    description="A TFX pipeline from raw MNIST IDX files to a blessed model for TF Serving.",
    # What TFX 1.21 supports (its wheels and this project's pins exist for 3.10-3.13); `make test` runs
    # on 3.11, `make test-fast` on 3.13 too (docs/TESTING.md). TFX installs kfp only below 3.12.
    python_requires=">=3.10,<3.14",
    packages=find_packages(
        include=["pipeline*", "components*", "modules*", "runs*", "serving*", "kubeflow*", "monitoring*"]
    ),
    package_data={"pipeline": ["schema/*.pbtxt"], "serving": ["web/*.html"]},
    install_requires=[
        "tfx[kfp]==1.21.0",
        # Not a tfx dependency, but the Trainer's TensorBoard callback needs it.
        "tensorboard",
        # Run reports (plots); the serving clients and their image loading.
        "matplotlib",
        "pillow",
        "requests",
        # The release's robustness suite (modules/distortions.py); TFMA installs it too.
        "scipy",
        # The model server's Prometheus metrics (serving/server/metrics.py).
        "prometheus-client",
        # Digits by other writers (benchmarks/other_writers.py: its bundled UCI digits); tfx needs it too.
        "scikit-learn",
        # The release's other formats (components/release/formats.py): LiteRT, the runtime a phone
        # ships; TFLite Micro's interpreter; tf2onnx and ONNX Runtime. These versions install beside
        # TensorFlow 2.21 with one protobuf (6.33).
        "ai-edge-litert==2.3.0",
        "tflite-micro",
        "tf2onnx==1.17.0",
        "onnx==1.23.2",
        "onnxruntime==1.32.0",
        # The release's attacks (components/release/adversarial.py): the Adversarial Robustness
        # Toolbox's FGSM and PGD through its TensorFlow v2 classifier.
        "adversarial-robustness-toolbox==1.20.1",
        # The privacy a DP-SGD training run spends (modules/privacy.py): Google's accountant.
        "dp-accounting==0.6.0",
    ],
    extras_require={
        # selenium drives the system's chromium (bootstrap.sh --browser installs it) for the web page test;
        # ruff formats and lints the tree (pinned: another version may format differently);
        # pytest-random-order runs the suite shuffled on request (`pytest --random-order`).
        # saliency: PAIR's integrated gradients, the independent reference for the explain signatures.
        # pytest-xdist: `make test` runs the suite in several workers.
        "test": [
            "pytest",
            "pytest-timeout",
            "pytest-random-order",
            "pytest-xdist",
            "selenium",
            "ruff==0.17.6",
            "saliency",
        ],
    },
)
