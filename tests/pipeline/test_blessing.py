"""The blessing as TFMA runs it (the Evaluator's engine) on real exported models and real test rows
from two sources: MNIST's test file and the held-out fresh rows of a span made from feedback.
A candidate is blessed only when it beats the baseline on the fresh rows; a tie is not enough; and a
fresh-window threshold on data without fresh rows fails, which is why the runner sets it only for
spans that hold them."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2

from components.idx_example_gen.executor import serialize
from components.release import metrics
from modules import features, idx
from pipeline import blessing

MNIST_ROWS, FRESH_ROWS = 200, 100


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory, transform_output):
    """The project's CNN exported with its initial weights (seeded): a model any trained one beats."""
    import keras

    from modules import cnn, export
    from modules.hparams import HParams

    keras.utils.set_random_seed(1)
    model = cnn.build_model(HParams(batch_size=64), steps_per_epoch=1)
    path = str(tmp_path_factory.mktemp("untrained") / "model")
    export.export_serving_model(model, transform_output, path)
    return path


def _examples(path, test_images_labels, fresh: bool) -> str:
    images, labels = test_images_labels
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(MNIST_ROWS):
            writer.write(serialize(images[i], labels[i], idx.TEST_PAIR))
        for i in range(MNIST_ROWS, MNIST_ROWS + FRESH_ROWS if fresh else MNIST_ROWS):
            # Fresh rows are MNIST test images shifted by 3 pixels: real traffic the models did not see.
            writer.write(serialize(np.roll(images[i], 3, axis=1), labels[i], idx.FRESH_PAIR))
    return path


def _evaluate(tmp_path, candidate, baseline, examples, fresh_window: bool):
    """Runs TFMA as the Evaluator does (candidate and baseline); returns (validation result, read)."""
    config = blessing.eval_config(0.0, 1.0, fresh_window=fresh_window)  # MNIST's slice always passes
    [spec] = config.model_specs
    candidate_spec, baseline_spec = config_pb2.ModelSpec(), config_pb2.ModelSpec()
    candidate_spec.CopyFrom(spec)
    baseline_spec.CopyFrom(spec)
    candidate_spec.name, baseline_spec.name, baseline_spec.is_baseline = "candidate", metrics.BASELINE, True
    del config.model_specs[:]
    config.model_specs.extend([candidate_spec, baseline_spec])
    models = [
        tfma.default_eval_shared_model(eval_saved_model_path=candidate, eval_config=config, model_name="candidate"),
        tfma.default_eval_shared_model(eval_saved_model_path=baseline, eval_config=config, model_name=metrics.BASELINE),
    ]
    out = str(tmp_path / "evaluation")
    tfma.run_model_analysis(eval_shared_model=models, eval_config=config, data_location=examples, output_path=out)
    assert metrics.thresholds(out) == {
        "min_accuracy": 0.0,
        "max_accuracy_drop": 1.0,
        "fresh_min_gain": blessing.FRESH_MIN_GAIN if fresh_window else None,
    }
    return tfma.load_validation_result(out), metrics.read(out), metrics.validation_failures(out)


def test_a_candidate_that_beats_the_baseline_on_fresh_rows_is_blessed_and_a_tie_is_not(
    tmp_path, exported_model, untrained_model, test_images_labels
):
    examples = _examples(str(tmp_path / "test.tfrecord"), test_images_labels, fresh=True)
    result, read, _ = _evaluate(tmp_path / "better", exported_model, untrained_model, examples, fresh_window=True)
    assert result.validation_ok
    fresh = read["fresh"]
    assert fresh["candidate"]["example_count"] == FRESH_ROWS
    assert fresh["candidate"][metrics.ACCURACY] > fresh["baseline"][metrics.ACCURACY]
    # "overall" and the per-class numbers stay MNIST's test rows alone.
    assert read["candidate"]["overall"]["example_count"] == MNIST_ROWS
    assert sum(sum(row) for row in read["confusion_matrix"]) == MNIST_ROWS

    result, read, failures = _evaluate(tmp_path / "tie", exported_model, exported_model, examples, fresh_window=True)
    assert not result.validation_ok
    assert read["fresh"]["candidate"][metrics.ACCURACY] == read["fresh"]["baseline"][metrics.ACCURACY]
    assert len(failures) == 1 and f"(source={idx.FRESH_PAIR})" in failures[0]


def test_a_fresh_window_threshold_without_fresh_rows_is_not_blessed(
    tmp_path, exported_model, untrained_model, test_images_labels
):
    examples = _examples(str(tmp_path / "test.tfrecord"), test_images_labels, fresh=False)
    result, read, _ = _evaluate(tmp_path / "missing", exported_model, untrained_model, examples, fresh_window=True)
    assert not result.validation_ok and [s.feature_values for s in result.missing_slices] == [
        {features.SOURCE_KEY: idx.FRESH_PAIR}
    ]
    assert read["fresh"] is None
    result, _, _ = _evaluate(tmp_path / "plain", exported_model, untrained_model, examples, fresh_window=False)
    assert result.validation_ok
