"""Compiled tasks run here through their own container command, with no cluster."""

import os
import shutil

import tensorflow_data_validation as tfdv

from components import tfx_files
from kubeflow import local_task
from modules import features
from pipeline import configs, data_slice


def test_schema_examplegen_and_statisticsgen_tasks_write_real_artifacts(compiled, tmp_path, small_data_root):
    spec = local_task.load_spec(compiled)
    root = str(tmp_path / "root")
    # Two spans: the driver must resolve span-{SPAN} to the newest, span-2 (300 train / 100 test records).
    data_root = str(tmp_path / "data")
    shutil.copytree(os.path.join(small_data_root, "span-1"), os.path.join(data_root, "span-1"))
    data_slice.write_slice(small_data_root, str(tmp_path / "newer"), 300, 100)
    shutil.copytree(os.path.join(tmp_path, "newer", "span-1"), os.path.join(data_root, "span-2"))

    # The spec names the schema's path inside the image; here the image is this checkout.
    schema = local_task.run_task(spec, "ImportSchemaGen", root, overrides={"schema_file": configs.SCHEMA_FILE})[
        "schema"
    ]
    assert tfdv.load_schema_text(tfx_files.schema_path(schema["uri"])).feature[0].name == features.IMAGE_KEY

    examples = local_task.run_task(spec, "IdxExampleGen", root, overrides={"input_base": data_root})["examples"]
    assert examples["metadata"]["split_names"] == '["train", "eval", "test"]'
    assert examples["metadata"]["custom:span"] == 2  # KFP metadata marks custom properties

    stats = local_task.run_task(spec, "StatisticsGen", root, inputs={"examples": examples, "schema": schema})
    counts = {
        split: tfdv.load_stats_binary(tfx_files.stats_path(stats["statistics"]["uri"], split)).datasets[0].num_examples
        for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT, features.TEST_SPLIT)
    }
    assert counts["train"] + counts["eval"] == 300 and counts["test"] == 100
