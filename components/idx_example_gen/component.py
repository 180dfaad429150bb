"""IdxExampleGen: TFX's FileBasedExampleGen with the IDX executor and MNIST's split layout.

Data layout under input_base (one folder per span; ExampleGen takes the latest span):
    span-{SPAN}/ the training pair (modules.idx.PAIRS["train"]) -> train + eval
    span-{SPAN}/ the test pair     (modules.idx.PAIRS["t10k"])  -> test
"""

from google.protobuf import any_pb2
from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.idx_example_gen import executor
from modules import idx
from modules.features import EVAL_SPLIT, TEST_SPLIT, TRAIN_SPLIT

TRAIN_PATTERN = f"{idx.SPAN_FOLDER}/{idx.pair_glob('train')}"  # {SPAN} resolves to the highest span
TEST_PATTERN = f"{idx.SPAN_FOLDER}/{idx.pair_glob('t10k')}"
TRAIN_BUCKETS, EVAL_BUCKETS = 11, 1  # hash buckets of the training files: 11:1 gives ~55k/5k


def create_idx_example_gen(input_base: str, train_buckets: int = TRAIN_BUCKETS, eval_buckets: int = EVAL_BUCKETS):
    """Train and eval share the training files, split train_buckets:eval_buckets by hash
    (11:1 gives the customary 55k/5k); test is the t10k file, which Trainer never reads."""
    input_config = tfx.proto.Input(
        splits=[
            tfx.proto.Input.Split(name=TRAIN_SPLIT, pattern=TRAIN_PATTERN),
            tfx.proto.Input.Split(name=EVAL_SPLIT, pattern=TRAIN_PATTERN),
            tfx.proto.Input.Split(name=TEST_SPLIT, pattern=TEST_PATTERN),
        ]
    )
    split_config = example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name=TRAIN_SPLIT, hash_buckets=train_buckets),
            example_gen_pb2.SplitConfig.Split(name=EVAL_SPLIT, hash_buckets=eval_buckets),
        ]
    )
    packed = any_pb2.Any()
    packed.Pack(split_config)
    # FileBasedExampleGen is not in tfx.v1's public API; it is the documented base for custom executors.
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        custom_config=example_gen_pb2.CustomConfig(custom_config=packed),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    )
