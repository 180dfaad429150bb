"""Feedback: labels joined to logged requests by id; unknown ids, duplicates and bad labels counted;
nothing stored is ever overwritten."""

import numpy as np
import pytest

from monitoring import feedback
from tests.monitoring.conftest import MODEL_NAME


def _csv(lines):
    return "request_id,row,label\n" + "".join(f"{i},{r},{label}\n" for i, r, label in lines)


def test_labels_join_the_logged_rows_and_refusals_are_counted(logged, tmp_path, test_images_labels):
    prefix, images, ids = logged
    labels = test_images_labels[1][:20]
    store = str(tmp_path / "store")
    text = _csv([(ids[k], r, labels[2 * k + r]) for k in range(3) for r in (0, 1)])
    text += "nope,0,3\n" + f"{ids[4]},0,10\n" + f"{ids[4]},1,seven\n" + f"{ids[0]},0,{labels[0]}\n"
    report = feedback.add_feedback(text, prefix, store, MODEL_NAME)
    assert (report.lines, report.stored, report.waiting, report.bad_labels, report.duplicates) == (10, 6, 1, 2, 1)
    stored = feedback.load_store(store)
    np.testing.assert_array_equal(stored["images"], images[:6])
    np.testing.assert_array_equal(stored["labels"], labels[:6])
    assert stored["request_ids"].tolist() == [ids[0], ids[0], ids[1], ids[1], ids[2], ids[2]]


def test_a_second_call_adds_a_file_and_never_touches_the_first(logged, tmp_path):
    prefix, _, ids = logged
    store = str(tmp_path / "store")
    first = feedback.add_feedback(_csv([(ids[0], 0, 7)]), prefix, store, MODEL_NAME)
    before = open(first.stored_file, "rb").read()
    again = feedback.add_feedback(_csv([(ids[0], 0, 1), (ids[1], 0, 2)]), prefix, store, MODEL_NAME)
    assert again.duplicates == 1 and again.stored == 1 and again.stored_file != first.stored_file
    assert open(first.stored_file, "rb").read() == before
    stored = feedback.load_store(store)
    assert stored["labels"].tolist() == [7, 2]  # the first label for ids[0] stands
    assert len(feedback.store_files(store)) == 2


def test_json_lines_are_read_like_csv(logged, tmp_path):
    prefix, _, ids = logged
    text = f'{{"request_id": "{ids[3]}", "row": 1, "label": 4}}\n{{"request_id": "{ids[3]}", "label": 5}}\nnot json\n'
    report = feedback.add_feedback(text, prefix, str(tmp_path / "s"), MODEL_NAME)
    assert (report.lines, report.stored, report.unreadable_lines) == (3, 2, 1)


def test_a_csv_without_the_needed_columns_is_refused(logged, tmp_path):
    with pytest.raises(ValueError, match="must name request_id and label"):
        feedback.add_feedback("id,digit\nx,1\n", logged[0], str(tmp_path / "s"), MODEL_NAME)


def _log_as(prefix: str, request_id: str, images) -> None:
    """Logs one request of `images` under the given id, as the server does."""
    from modules import signatures
    from serving.server import request_log
    from serving.server.metrics import NoMetrics

    logger = request_log.RequestLogger(request_log.LoggingSpec(prefix, 1.0), NoMetrics(), MODEL_NAME)
    probabilities = np.full((len(images), 10), 0.1, np.float32)
    logger.offer(
        request_id,
        1,
        signatures.IMAGES_SIGNATURE,
        {signatures.IMAGES_INPUT: images},
        {},
        {"probabilities": probabilities},
    )
    logger.close()


def test_a_label_that_comes_before_its_request_is_logged_waits_and_is_joined_later(tmp_path, test_images_labels):
    images = test_images_labels[0][:2]
    prefix, store = str(tmp_path / "logs" / "requests"), str(tmp_path / "store")
    early = feedback.add_feedback(_csv([("late", 0, 4)]), prefix, store, MODEL_NAME)
    assert (early.stored, early.waiting, early.unknown_ids) == (0, 1, 0)
    _log_as(prefix, "late", images[:1])
    later = feedback.add_feedback(_csv([]), prefix, store, MODEL_NAME)
    assert (later.stored, later.waiting) == (1, 0)
    stored = feedback.load_store(store)
    assert stored["request_ids"].tolist() == ["late"] and stored["labels"].tolist() == [4]
    np.testing.assert_array_equal(stored["images"], images[:1])
    # One that never comes is refused once it has waited its time.
    feedback.add_feedback(_csv([("never", 0, 1)]), prefix, store, MODEL_NAME)
    given_up = feedback.add_feedback(_csv([]), prefix, store, MODEL_NAME, wait_seconds=0)
    assert (given_up.unknown_ids, given_up.waiting) == (1, 0) and feedback.read_pending(store) == []


def test_a_label_for_an_id_logged_twice_is_refused_not_attached_to_either(tmp_path, test_images_labels):
    """Two requests under one id (as a replayed or forged log would hold): the label could belong to
    either image, so it joins neither."""
    images = test_images_labels[0][:2]
    prefix, store = str(tmp_path / "logs" / "requests"), str(tmp_path / "store")
    _log_as(prefix, "shared", images[:1])
    _log_as(prefix, "shared", images[1:2])
    report = feedback.add_feedback(_csv([("shared", 0, 5)]), prefix, store, MODEL_NAME)
    assert (report.stored, report.ambiguous) == (0, 1) and "logged more than once" in report.examples[0]
    assert len(feedback.load_store(store)["labels"]) == 0


def test_concurrent_calls_store_each_row_once(logged, tmp_path):
    import threading

    prefix, _, ids = logged
    store = str(tmp_path / "store")
    text = _csv([(ids[k], r, 3) for k in range(10) for r in (0, 1)])
    reports = []
    threads = [
        threading.Thread(target=lambda: reports.append(feedback.add_feedback(text, prefix, store, MODEL_NAME)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(r.stored for r in reports) == [0, 0, 0, 20] and sum(r.duplicates for r in reports) == 60
    assert len(feedback.load_store(store)["labels"]) == 20


def test_readers_leave_out_a_row_stored_twice_with_different_labels(logged, tmp_path):
    prefix, _, ids = logged
    store = str(tmp_path / "store")
    feedback.add_feedback(_csv([(ids[0], 0, 1), (ids[1], 0, 2)]), prefix, store, MODEL_NAME)
    first = feedback.load_store(store)
    conflicting = {k: v[:1] for k, v in first.items()}
    conflicting["labels"] = np.array([9])  # ids[0] row 0 again, another label (written by an old version)
    agreeing = {k: v[1:] for k, v in first.items()}
    feedback.write_new(store, conflicting)
    feedback.write_new(store, agreeing)
    stored = feedback.load_store(store)
    assert stored["request_ids"].tolist() == [ids[1]] and stored["labels"].tolist() == [2]
