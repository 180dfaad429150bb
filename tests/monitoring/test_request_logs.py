"""Reading request logs back: every good record kept, bad files and records counted in plain words."""

import numpy as np

from monitoring import request_logs
from tests.monitoring.conftest import MODEL_NAME, write_log


def test_logged_requests_read_back_row_by_row(logged):
    prefix, images, ids = logged
    rows, problems = request_logs.read(request_logs.log_files(prefix), MODEL_NAME)
    assert problems.files == 1 and problems.records == 10 and problems.bad_records == 0
    assert rows.request_ids.tolist() == [i for i in ids for _ in range(2)]
    assert rows.rows.tolist() == [0, 1] * 10
    np.testing.assert_array_equal(rows.images, images)
    assert rows.probabilities.argmax(axis=1).tolist() == [i % 10 for i in range(20)]


def test_a_truncated_file_keeps_the_records_before_the_cut(logged):
    prefix, images, _ = logged
    (path,) = request_logs.log_files(prefix)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) - 100])  # the last record loses its tail
    rows, problems = request_logs.read([path], MODEL_NAME)
    assert problems.truncated_files == 1 and "unreadable" in problems.messages[0]
    assert len(rows) == 18  # nine whole requests of two
    np.testing.assert_array_equal(rows.images, images[:18])


def test_records_of_other_models_and_undecodable_records_are_counted_and_skipped(tmp_path, test_images_labels):
    import tensorflow as tf

    images = test_images_labels[0][:4]
    write_log(str(tmp_path / "a"), images, model_name="other")
    garbage = tmp_path / "a-garbage.tfrecord"
    with tf.io.TFRecordWriter(str(garbage)) as writer:
        writer.write(b"\x08\x96\x01 not a PredictionLog")
    write_log(str(tmp_path / "a"), images)
    rows, problems = request_logs.read(request_logs.log_files(str(tmp_path / "a")), MODEL_NAME)
    assert len(rows) == 4
    assert problems.other_models == 4 and problems.bad_records == 1
    assert "a record was skipped" in problems.messages[0]


def test_a_window_keeps_only_rows_answered_inside_it(logged):
    prefix, _, _ = logged
    rows, _ = request_logs.read(request_logs.log_files(prefix), MODEL_NAME)
    stamp = int(rows.timestamps[0])
    assert len(request_logs.read(request_logs.log_files(prefix), MODEL_NAME, since=stamp, until=stamp + 3600)[0]) == 20
    assert len(request_logs.read(request_logs.log_files(prefix), MODEL_NAME, since=stamp + 3600)[0]) == 0


def _log_pictures(prefix: str, pictures: list, seen: np.ndarray, found: list) -> None:
    from modules import signatures
    from serving.server import request_log
    from serving.server.metrics import NoMetrics

    logger = request_log.RequestLogger(request_log.LoggingSpec(prefix, 1.0), NoMetrics(), MODEL_NAME)
    outputs = {
        signatures.PROBABILITIES_OUTPUT: np.full((len(pictures), 10), 0.1, np.float32),
        signatures.CLASSES_OUTPUT: np.where(found, 3, signatures.NO_DIGIT_CLASS).astype(np.int64),
        signatures.SEEN_IMAGES_OUTPUT: seen,
        signatures.DIGIT_FOUND_OUTPUT: np.array(found),
    }
    inputs = {signatures.PICTURES_INPUT: np.array(pictures, dtype=object)}
    logger.offer("pics", 1, signatures.PICTURES_SIGNATURE, inputs, {}, outputs)
    logger.close()


def test_pictures_calls_read_back_as_what_the_model_saw_and_as_samples_of_what_was_sent(tmp_path, test_images_labels):
    """The checks read the 28x28 image the model made of each picture (a blank page is no row); the
    report's samples keep the picture as received beside it."""
    images = test_images_labels[0][:3]
    prefix = str(tmp_path / "logs" / "requests")
    pictures = [b"picture-0", b"picture-1", b"picture-2"]
    _log_pictures(prefix, pictures, images, [True, False, True])
    write_log(prefix, test_images_labels[0][3:5])  # an images call beside it: no picture sample
    rows, problems = request_logs.read(request_logs.log_files(prefix), MODEL_NAME)
    assert problems.bad_records == 0
    assert rows.request_ids.tolist()[:2] == ["pics", "pics"] and rows.rows.tolist()[:2] == [0, 2]
    np.testing.assert_array_equal(rows.images[:2], images[[0, 2]])
    samples = request_logs.picture_samples(request_logs.log_files(prefix), MODEL_NAME)
    assert [(s.row, s.picture, s.digit_found, s.predicted) for s in samples] == [
        (0, b"picture-0", True, 3),
        (1, b"picture-1", False, -1),
        (2, b"picture-2", True, 3),
    ]
    np.testing.assert_array_equal(samples[2].image, images[2])
    assert len(request_logs.picture_samples(request_logs.log_files(prefix), MODEL_NAME, limit=2)) == 2
    assert request_logs.picture_samples(request_logs.log_files(prefix), MODEL_NAME, since=4e9) == []
