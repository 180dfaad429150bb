"""Feedback: labels joined to logged requests by id; unknown ids, duplicates and bad labels counted;
nothing stored is ever overwritten."""

import os

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
    assert (report.lines, report.stored, report.unknown_ids, report.bad_labels, report.duplicates) == (10, 6, 1, 2, 1)
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
    assert len(os.listdir(store)) == 2


def test_json_lines_are_read_like_csv(logged, tmp_path):
    prefix, _, ids = logged
    text = f'{{"request_id": "{ids[3]}", "row": 1, "label": 4}}\n{{"request_id": "{ids[3]}", "label": 5}}\nnot json\n'
    report = feedback.add_feedback(text, prefix, str(tmp_path / "s"), MODEL_NAME)
    assert (report.lines, report.stored, report.unreadable_lines) == (3, 2, 1)


def test_a_csv_without_the_needed_columns_is_refused(logged, tmp_path):
    with pytest.raises(ValueError, match="must name request_id and label"):
        feedback.add_feedback("id,digit\nx,1\n", logged[0], str(tmp_path / "s"), MODEL_NAME)
