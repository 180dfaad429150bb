"""Pipeline settings: names, dotted entry points, thresholds, Beam args. Importing changes nothing."""

import os

# The checkout (or the image's install) this package lives in: the one place that computes it.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_ROOT = os.path.join(PROJECT_ROOT, "data", "mnist")  # span-N/ folders of IDX files
OUTPUT_ROOT = os.path.join(PROJECT_ROOT, "outputs")  # pipeline root, metadata.sqlite, summary, report, log
SERVING_ROOT = os.path.join(PROJECT_ROOT, "serving_model")  # push root: <model name>/<version>/, models.config
METADATA_FILE = "metadata.sqlite"  # ML Metadata, under the output root
# The production loop (monitoring/): what the server logged, the labels that came back for it (kept
# apart from the outputs: they are data, never thrown away), and the monitor's reports.
REQUEST_LOG_ROOT = os.path.join(OUTPUT_ROOT, "request_logs")  # <model name>/requests-*.tfrecord
FEEDBACK_ROOT = os.path.join(PROJECT_ROOT, "data", "feedback")  # labelled-*.npz, append only
MONITOR_ROOT = os.path.join(OUTPUT_ROOT, "monitor")

PIPELINE_NAME = "mnist_tfx"
MODEL_NAME = "mnist"  # the TF Serving model name: serving_model/<MODEL_NAME>/<version>/
REQUEST_LOG_PREFIX = os.path.join(REQUEST_LOG_ROOT, MODEL_NAME, "requests")  # as render_models_config names it

# Dotted paths of the installed package: the same code runs locally and in the Kubeflow image.
PREPROCESSING_FN = "modules.preprocessing.preprocessing_fn"
RUN_FN = "modules.model.run_fn"
TUNER_FN = "modules.tuning.tuner_fn"
TUNING_TRIALS = 4  # points of modules.tuning.search_space tried when --tune is on

# The curated schema (ImportSchemaGen); shipped inside the package for the Kubeflow image too.
SCHEMA_FILE = os.path.join(PROJECT_ROOT, "pipeline", "schema", "schema.pbtxt")

# Drift of a new span's train split against the last validated span's; beyond these it is an
# anomaly and the run stops. Two 3k-record samples of MNIST differ by about 0.02 in L-infinity.
LABEL_DRIFT_LINF = 0.05
PIXEL_DRIFT_JSD = 0.01

# The monitor (python -m monitoring.check) compares served traffic with the data that trained the
# served version, with the DataGate's bounds: PIXEL_DRIFT_JSD for pixel skew and drift,
# LABEL_DRIFT_LINF for the predicted-class mix against the test split's. A window of fewer rows
# than MONITOR_MIN_ROWS is reported, never flagged (at 500 rows a class's share varies by ~0.013).
MONITOR_MIN_ROWS = 500
MONITOR_MAX_LOW_CONFIDENCE_RATE = 0.05  # share of predictions under the server's low-confidence bound
# Online accuracy is flagged when even its one-sided 95% upper bound (Wilson) lies more than this
# below the served version's test accuracy; labels on fewer rows than MONITOR_MIN_LABELLED: not judged.
MONITOR_MAX_ACCURACY_DROP = 0.01
MONITOR_MIN_LABELLED = 50

# A span made from feedback (python -m monitoring.span) holds this share of the new labelled rows
# out of training; a new model is pushed only if it beats the served one on them.
FRESH_HOLDOUT_SHARE = 0.3

# Blessing: the candidate's test accuracy must reach MIN_ACCURACY and may not fall more than
# MAX_ACCURACY_DROP below the latest blessed model's (skipped on the first run: no baseline).
MIN_ACCURACY = 0.99
MAX_ACCURACY_DROP = 0.002

# FnApiRunner: Beam 2.77's default DirectRunner tries to download a Prism binary for every job.
# in_memory: multi_processing measured 1.35-2.7x slower on this 2-core machine.
BEAM_PIPELINE_ARGS = ("--runner=FnApiRunner", "--direct_running_mode=in_memory")
# The components that run Beam jobs (ids in pipeline/dag.py): the ones --component-beam-arg may name.
BEAM_COMPONENTS = ("IdxExampleGen", "StatisticsGen", "Transform", "Evaluator")

# Quick mode: a slice of the data and short training, for tests and smoke runs. 44 steps are too
# few for BatchNorm's default moving-average momentum (0.99) to settle, hence 0.9.
QUICK_TRAIN_RECORDS = 3000
QUICK_TEST_RECORDS = 1000
QUICK_HPARAMS = {"epochs": 2, "bn_momentum": 0.9}
QUICK_MIN_ACCURACY = 0.5
# Test digits the release attacks for its adversarial table (components/release/adversarial.py),
# for the pushed model and for the one it replaces: the attacks' time grows with this number.
ATTACK_EXAMPLES = 500
# The release's adversarial table on 40 digits: its code runs, its numbers mean little.
QUICK_ATTACK_EXAMPLES = 40
