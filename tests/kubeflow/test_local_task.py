"""Compiled tasks run here through their own container command, with no cluster."""
import os

import tensorflow_data_validation as tfdv

from kubeflow import local_task
from pipeline import configs


def test_schema_examplegen_and_statisticsgen_tasks_write_real_artifacts(compiled, tmp_path, small_data_root):
    spec = local_task.load_spec(compiled)
    root = str(tmp_path)
    # The spec names the schema's path inside the image; here the image is this checkout.
    schema = local_task.run_task(spec, "ImportSchemaGen", root, overrides={"schema_file": configs.SCHEMA_FILE})["schema"]
    assert tfdv.load_schema_text(os.path.join(schema["uri"], "schema.pbtxt")).feature[0].name == "image"

    examples = local_task.run_task(spec, "IdxExampleGen", root)["examples"]
    assert examples["metadata"]["split_names"] == '["train", "eval", "test"]'
    # The driver resolved span-{SPAN} to the latest span (KFP metadata marks custom properties).
    assert examples["metadata"]["custom:span"] == 1

    stats = local_task.run_task(spec, "StatisticsGen", root, inputs={"examples": examples, "schema": schema})
    counts = {split: tfdv.load_stats_binary(os.path.join(stats["statistics"]["uri"], f"Split-{split}",
                                                         "FeatureStats.pb")).datasets[0].num_examples
              for split in ("train", "eval", "test")}
    assert counts["train"] + counts["eval"] == 600 and counts["test"] == 200
