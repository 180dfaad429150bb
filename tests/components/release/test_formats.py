"""Every format the release ships: converted, checked against the SavedModel and timed; one that
fails is left out with its reason, and the rest still ship."""

import os

import numpy as np
import pytest
import tensorflow as tf

from components.release import confidence, formats, micro, onnx_model, tflite

ROWS = 300
MICRO_ROWS = formats.MICRO_ROWS


@pytest.fixture(scope="module")
def made(exported_model, test_images_labels, train_images_labels, tmp_path_factory):
    images, labels = (a[:ROWS] for a in test_images_labels)
    predict = confidence.images_predictor(exported_model)
    scratch = str(tmp_path_factory.mktemp("formats"))
    calibration = tflite.calibration_sample(train_images_labels[0][:2000], rows=200)
    record, files = formats.release_record(
        exported_model, images, labels, predict(images), predict, calibration, scratch
    )
    return record, files, labels


def test_every_format_ships_with_its_numbers(made, exported_model, test_images_labels):
    record, files, labels = made
    images = test_images_labels[0][:ROWS]
    assert record["missing"] == {}
    assert set(files) == {
        "model.tflite",
        "model_float16.tflite",
        "model_int8.tflite",
        "model_data.cc",
        "model_data.h",
        "model.onnx",
    }
    for name in (formats.SAVED_MODEL, *tflite.KINDS, formats.ONNX):
        entry = record[name]
        assert entry["examples"] == len(labels)
        assert set(entry["latency_ms"]) == {"batch_1", "batch_32"} and all(v > 0 for v in entry["latency_ms"].values())
        if "file" in entry:
            assert os.path.getsize(files[entry["file"]]) == entry["size_bytes"]
    micro = record[formats.MICRO]
    assert micro["examples"] == formats.MICRO_ROWS
    # TFLite Micro's accuracy on its rows is LiteRT's on the shipped int8 file: the same classes.
    with open(files["model_int8.tflite"], "rb") as f:
        int8 = f.read()
    loaded = tf.saved_model.load(exported_model)
    by_litert = tflite.predict_classes(
        int8, tflite.FULL_INTEGER, tflite.device_inputs(loaded, int8, images[:MICRO_ROWS])
    )
    differ = len(micro["rows_differing_from_litert"])
    assert micro["same_class_as_litert"] == MICRO_ROWS - differ
    assert abs(micro["accuracy"] - np.mean(by_litert == labels[:MICRO_ROWS])) <= differ / MICRO_ROWS
    assert micro["flash_bytes"] == record[tflite.FULL_INTEGER]["size_bytes"] and micro["arena_bytes"] > 0
    assert record[formats.ONNX]["max_probability_difference"] < 1e-4
    assert formats.summary_line(record) == ("formats: tflite, tflite_float16, tflite_int8, tflite_micro, onnx")
    rows = formats.table_rows(record)
    assert [row[0] for row in rows] == [formats.DESCRIPTIONS[name] for name in formats.ORDER]
    assert all(len(row) == len(formats.TABLE_HEADER) for row in rows)


def test_a_failed_conversion_is_left_out_with_its_reason_and_the_rest_ship(
    exported_model, test_images_labels, tmp_path, monkeypatch
):
    def no_onnx(loaded):
        raise ValueError("Unsupported ops: SomeOp")

    monkeypatch.setattr(onnx_model, "convert", no_onnx)
    images, labels = (a[:100] for a in test_images_labels)
    predict = confidence.images_predictor(exported_model)
    empty = np.zeros([0, 28, 28], np.uint8)  # no training images to calibrate on
    record, files = formats.release_record(
        exported_model, images, labels, predict(images), predict, empty, str(tmp_path)
    )
    assert record["missing"] == {
        "tflite_int8": "tflite_int8: the calibration sample is empty (no training images)",
        "tflite_micro": "tflite_micro: no full-integer model "
        "(tflite_int8: the calibration sample is empty (no training images))",
        "onnx": "onnx: ValueError: Unsupported ops: SomeOp",
    }
    assert set(files) == {"model.tflite", "model_float16.tflite"}
    line = formats.summary_line(record)
    assert line.startswith("formats: tflite, tflite_float16; MISSING tflite_int8: the calibration sample is empty")
    assert "onnx: ValueError: Unsupported ops: SomeOp" in line
    missing_rows = [row for row in formats.table_rows(record) if row[1] == "**missing**"]
    assert [row[-1] for row in missing_rows] == list(record["missing"].values())


def test_a_format_below_its_accuracy_bound_is_left_out(monkeypatch):
    entry = {"accuracy": 0.95}
    with pytest.raises(
        tflite.ConversionError, match=r"onnx: test accuracy 0.9500 is more than 0.1% below the SavedModel's 0.9900"
    ):
        formats._within_bound("onnx", entry, 0.99)
    formats._within_bound("onnx", {"accuracy": 0.9891}, 0.99)  # within 0.1 point: ships


def test_the_saved_model_size_leaves_out_the_other_formats(exported_model, tmp_path):
    import shutil

    copy = tmp_path / "version"
    shutil.copytree(exported_model, copy)
    alone = formats.saved_model_bytes(str(copy))
    (copy / "model.onnx").write_bytes(b"x" * 1000)
    assert formats.saved_model_bytes(str(copy)) == alone > 0


def test_tflite_micro_is_left_out_when_its_classes_stray_from_litert_s(
    exported_model, test_images_labels, train_images_labels, tmp_path, monkeypatch
):
    real = micro.predict_classes

    def one_flipped(flatbuffer, inputs, arena_size):
        classes = real(flatbuffer, inputs, arena_size)
        classes[7] = (classes[7] + 1) % 10
        return classes

    monkeypatch.setattr(micro, "predict_classes", one_flipped)
    monkeypatch.setattr(onnx_model, "convert", lambda loaded: (_ for _ in ()).throw(ValueError("not needed here")))
    images, labels = (a[:100] for a in test_images_labels)
    predict = confidence.images_predictor(exported_model)
    calibration = tflite.calibration_sample(train_images_labels[0][:2000], rows=100)
    record, files = formats.release_record(
        exported_model, images, labels, predict(images), predict, calibration, str(tmp_path), micro_rows=100
    )
    assert record["missing"]["tflite_micro"] == "tflite_micro: 1 of 100 classes differ from LiteRT's (at most 0.1%)"
    assert "model_data.cc" not in files and "model_int8.tflite" in files


def test_formats_not_requested_are_not_made_and_the_record_says_so(exported_model, test_images_labels, tmp_path):
    images, labels = (a[:50] for a in test_images_labels)
    predict = confidence.images_predictor(exported_model)
    # TFLite Micro alone: its C source is the full-integer model, which was not asked for.
    record, files = formats.release_record(
        exported_model, images, labels, predict(images), predict, None, str(tmp_path), requested=(formats.MICRO,)
    )
    assert files == {} and set(record) == {formats.SAVED_MODEL, "missing", "not_requested"}
    assert record["not_requested"] == [*tflite.KINDS, formats.ONNX]
    assert record["missing"] == {formats.MICRO: "tflite_micro: no full-integer model (tflite_int8 not requested)"}
    assert formats.summary_line(record).endswith("; not requested: tflite, tflite_float16, tflite_int8, onnx")
    record, files = formats.release_record(
        exported_model, images, labels, predict(images), predict, None, str(tmp_path), requested=()
    )
    assert files == {} and record["missing"] == {} and record["not_requested"] == list(formats.ORDER[1:])
    assert formats.summary_line(record).startswith("formats: none besides the SavedModel; not requested: tflite,")
