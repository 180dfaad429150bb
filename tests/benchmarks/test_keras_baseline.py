"""The plain Keras script splits train/eval exactly as IdxExampleGen does."""

import glob
import os

import tensorflow as tf

from benchmarks import keras_baseline
from components.idx_example_gen import component as idx_example_gen


def test_split_equals_example_gen_on_the_same_records(tmp_path, small_data_root, beam_pipeline_args):
    from tfx import v1 as tfx
    from tfx.orchestration import metadata

    splits = keras_baseline.load_splits(os.path.join(small_data_root, "span-1"))
    example_gen = idx_example_gen.create_idx_example_gen(small_data_root).with_id("IdxExampleGen")
    root = str(tmp_path / "root")
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name="split_check",
            pipeline_root=root,
            components=[example_gen],
            metadata_connection_config=metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite")),
            beam_pipeline_args=beam_pipeline_args,
        )
    )
    for split in ("train", "eval"):
        files = glob.glob(os.path.join(root, "IdxExampleGen", "examples", "*", f"Split-{split}", "*"))
        count = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
        assert count == len(splits[split][1]), split
    assert len(splits["train"][1]) + len(splits["eval"][1]) == 600
