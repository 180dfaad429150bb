"""IdxExampleGen's executor run for real (Beam, TFRecord output) on a small IDX span."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.idx_example_gen import component, executor
from modules import features, idx


def _read_split(examples, split):
    uri = artifact_utils.get_split_uri([examples], split)
    files = tf.io.gfile.glob(os.path.join(uri, "*"))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _generate(data_root, out_dir, beam_pipeline_args):
    gen = component.create_idx_example_gen(data_root)
    exec_properties = {k: v for k, v in gen.exec_properties.items()}
    for key in (
        standard_component_specs.INPUT_CONFIG_KEY,
        standard_component_specs.CUSTOM_CONFIG_KEY,
        standard_component_specs.OUTPUT_CONFIG_KEY,
    ):
        if not isinstance(exec_properties[key], str):
            exec_properties[key] = proto_utils.proto_to_json(exec_properties[key])
    # Resolve {SPAN} the way ExampleGen's driver does before the executor runs.
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    for split in input_config.splits:
        split.pattern = split.pattern.replace("{SPAN}", "1")
    exec_properties[standard_component_specs.INPUT_CONFIG_KEY] = proto_utils.proto_to_json(input_config)
    examples = standard_artifacts.Examples()
    examples.uri = out_dir
    ex = executor.Executor(executor.Executor.Context(beam_pipeline_args=beam_pipeline_args))
    ex.Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return examples


@pytest.fixture(scope="module")
def generated(small_data_root, tmp_path_factory, beam_pipeline_args):
    return _generate(small_data_root, str(tmp_path_factory.mktemp("examples")), beam_pipeline_args)


def test_split_names(generated):
    assert artifact_utils.decode_split_names(generated.split_names) == ["train", "eval", "test"]


def test_train_and_eval_partition_the_training_file(generated):
    train, evals, test = (_read_split(generated, s) for s in ("train", "eval", "test"))
    assert len(train) + len(evals) == 600
    assert len(test) == 200
    # 11:1 hash buckets: about 50 of 600 go to eval.
    assert 25 <= len(evals) <= 80
    train_keys = {e.SerializeToString() for e in train}
    assert not any(e.SerializeToString() in train_keys for e in evals)


def test_records_hold_784_int_pixels_and_the_label(generated, small_data_root):
    from modules import idx

    span = os.path.join(small_data_root, "span-1")
    images, labels = idx.read_span_pair(span, "t10k")
    by_pixels = {img.tobytes(): int(lab) for img, lab in zip(images, labels)}
    for example in _read_split(generated, "test")[:20]:
        pixels = example.features.feature[features.IMAGE_KEY].int64_list.value
        label = example.features.feature[features.LABEL_KEY].int64_list.value
        assert len(pixels) == features.NUM_PIXELS and len(label) == 1
        assert example.features.feature[features.SOURCE_KEY].bytes_list.value == [b"t10k"]
        assert by_pixels[np.array(pixels, np.uint8).tobytes()] == label[0]


def test_missing_labels_file_is_named(tmp_path):
    (tmp_path / idx.PAIRS["train"][0]).write_bytes(b"")
    with pytest.raises(ValueError, match="in pairs of the same name.*train-images-idx3"):
        executor.find_idx_pairs(str(tmp_path / idx.pair_glob("train")))


def test_the_test_pattern_takes_the_fresh_pair_too_each_with_its_partner(tmp_path):
    for pair in ("t10k", idx.FRESH_PAIR):
        for path in idx.pair_paths(str(tmp_path), pair):
            open(path, "wb").close()
    found = executor.find_idx_pairs(str(tmp_path / idx.pair_glob("t10k")))
    assert [tuple(os.path.basename(p) for p in pair) for pair in found] == [
        idx.PAIRS["t10k"],
        tuple(os.path.basename(p) for p in idx.pair_paths(str(tmp_path), idx.FRESH_PAIR)),
    ]
    os.remove(idx.pair_paths(str(tmp_path), idx.FRESH_PAIR)[1])
    with pytest.raises(ValueError, match="t10k-fresh-images"):
        executor.find_idx_pairs(str(tmp_path / idx.pair_glob("t10k")))


def test_record_bytes_and_split_do_not_depend_on_the_process_hash_seed(few_images):
    """Two processes with different PYTHONHASHSEED serialize the same images to the same bytes,
    so the sha256 split is the same in every run (it was not before deterministic=True)."""
    import subprocess
    import sys

    images, labels = few_images
    code = (
        "import hashlib, sys, numpy as np; from components.idx_example_gen.executor import serialize;"
        f"images = np.array({images[:8].tolist()}, dtype=np.uint8); labels = {labels[:8].tolist()};"
        "print(hashlib.sha256(b''.join(serialize(i, l, 'train') for i, l in zip(images, labels))).hexdigest())"
    )
    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    # Seeds 1 and 2 put the feature map in different orders here (measured); both processes at once.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=project,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in ("1", "2")
    ]
    digests = {proc.communicate(timeout=120)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(digests) == 1 and len(next(iter(digests))) == 64


def test_a_span_in_shards_gives_the_same_records_and_splits(generated, small_data_root, tmp_path, beam_pipeline_args):
    """Three training shards (documented naming) and the plain test pair: every record has the same
    bytes, source included, and so lands in the same split as when the span is one file pair."""
    span = idx.span_dir(str(tmp_path / "data"), 1)
    os.makedirs(span)
    idx.write_shards(span, idx.TRAIN_PAIR, *idx.read_span_pair(idx.span_dir(small_data_root, 1), idx.TRAIN_PAIR), 3)
    idx.write_shards(span, idx.TEST_PAIR, *idx.read_span_pair(idx.span_dir(small_data_root, 1), idx.TEST_PAIR), 1)
    assert len(executor.find_idx_pairs(os.path.join(span, idx.pair_glob(idx.TRAIN_PAIR)))) == 3
    assert os.path.basename(idx.shard_paths(span, "train", 2, 3)[0]) == "train-00002-of-00003-images-idx3-ubyte.gz"
    sharded = _generate(str(tmp_path / "data"), str(tmp_path / "examples"), beam_pipeline_args)
    for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT, features.TEST_SPLIT):
        want = sorted(e.SerializeToString(deterministic=True) for e in _read_split(generated, split))
        got = sorted(e.SerializeToString(deterministic=True) for e in _read_split(sharded, split))
        assert got == want and len(got) > 0, split
