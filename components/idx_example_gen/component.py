"""IdxExampleGen: TFX's FileBasedExampleGen with the IDX executor and MNIST's split layout.

Data layout under input_base (one folder per span; ExampleGen takes the latest span):
    span-{SPAN}/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz -> train + eval
    span-{SPAN}/t10k-images-idx3-ubyte.gz,  t10k-labels-idx1-ubyte.gz  -> test
"""
from google.protobuf import any_pb2
from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.idx_example_gen import executor

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
TEST_SPLIT = "test"

TRAIN_PATTERN = "span-{SPAN}/train-*-ubyte.gz"
TEST_PATTERN = "span-{SPAN}/t10k-*-ubyte.gz"
TRAIN_BUCKETS, EVAL_BUCKETS = 11, 1  # hash buckets of the training files: 11:1 gives ~55k/5k


def create_idx_example_gen(input_base: str, train_buckets: int = TRAIN_BUCKETS, eval_buckets: int = EVAL_BUCKETS):
    """Train and eval share the training files, split train_buckets:eval_buckets by hash
    (11:1 gives the customary 55k/5k); test is the t10k file, which Trainer never reads."""
    input_config = tfx.proto.Input(splits=[
        tfx.proto.Input.Split(name=TRAIN_SPLIT, pattern=TRAIN_PATTERN),
        tfx.proto.Input.Split(name=EVAL_SPLIT, pattern=TRAIN_PATTERN),
        tfx.proto.Input.Split(name=TEST_SPLIT, pattern=TEST_PATTERN),
    ])
    split_config = example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=TRAIN_SPLIT, hash_buckets=train_buckets),
        example_gen_pb2.SplitConfig.Split(name=EVAL_SPLIT, hash_buckets=eval_buckets),
    ])
    packed = any_pb2.Any()
    packed.Pack(split_config)
    # FileBasedExampleGen is not in tfx.v1's public API; it is the documented base for custom executors.
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        custom_config=example_gen_pb2.CustomConfig(custom_config=packed),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    )
