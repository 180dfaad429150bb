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
