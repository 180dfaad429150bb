"""The one rule for a version directory, shared by the release (which writes) and the server (which reads)."""

import os

import pytest

from components.release import safe_push
from modules import push_layout


def test_a_version_is_a_positive_integer_in_ascii_digits():
    assert push_layout.version_of("1795334929") == 1795334929
    for name in ("0", "-3", "12a", ".staging-5-77", "\u0663", "\u00b2", "", "latest"):  # '٣' and '²' are isdigit()
        assert push_layout.version_of(name) is None, name


def test_version_dirs_need_an_integer_name_and_a_saved_model(tmp_path):
    for name, with_model in (("3", True), ("5", False), ("\u0663", True), (".staging-7-1", True)):
        os.makedirs(tmp_path / name)
        if with_model:
            (tmp_path / name / push_layout.SAVED_MODEL_FILE).write_bytes(b"")
    (tmp_path / "9").write_text("a file, not a directory")
    assert push_layout.version_dirs(str(tmp_path)) == {3: str(tmp_path / "3")}
    assert push_layout.version_dirs(str(tmp_path / "missing")) == {}


def test_the_next_version_follows_the_same_rule_and_never_reuses_a_name(tmp_path):
    for name in ("5", "\u0663", "900"):
        os.makedirs(tmp_path / name)
    (tmp_path / "901").write_text("a stray file with an integer name")
    assert safe_push.next_version(str(tmp_path), now=3) == 902  # above 900 and 901, '٣' is no version
    assert safe_push.next_version(str(tmp_path), now=5000) == 5000


def test_models_config_sits_beside_the_model_folder_and_names_it():
    assert push_layout.models_config_path("/srv/serving_model/mnist") == "/srv/serving_model/models.config"
    text = push_layout.render_models_config([("mnist", "/srv/serving_model/mnist")])
    assert 'name: "mnist"' in text and 'base_path: "/srv/serving_model/mnist"' in text
    assert "num_versions: 1" in text


def test_request_logging_is_rendered_and_survives_the_next_push():
    logged = push_layout.render_models_config([("mnist", "/srv/m")], request_log=("/var/log/serving", 0.1))
    assert 'filename_prefix: "/var/log/serving/mnist/requests"' in logged and "sampling_rate: 0.1" in logged
    # The release rewrites models.config on every push: an operator's logging_config must stay.
    again = push_layout.render_models_config([("mnist", "/srv/m2"), ("other", "/srv/o")], previous=logged)
    assert again.count("logging_config") == 1 and 'base_path: "/srv/m2"' in again
    assert "sampling_rate: 0.1" in again
    assert "logging_config" not in push_layout.render_models_config([("mnist", "/srv/m")])


def test_a_run_asks_for_all_formats_none_or_a_list_and_micro_needs_the_int8_model():
    assert push_layout.requested_formats("all") == push_layout.FORMATS
    assert push_layout.requested_formats("none") == ()
    # In the release's order, whatever order they were named in.
    assert push_layout.requested_formats(" onnx, tflite ") == (push_layout.TFLITE, push_layout.ONNX)
    assert push_layout.requested_formats("tflite_int8,tflite_micro") == (
        push_layout.TFLITE_INT8,
        push_layout.TFLITE_MICRO,
    )
    for wrong, says in (("tflite,coreml", "expected all, none or some of"), ("", "expected"), (",", "expected")):
        with pytest.raises(ValueError, match=says):
            push_layout.requested_formats(wrong)
    with pytest.raises(ValueError, match="tflite_micro is the tflite_int8 model as C source"):
        push_layout.requested_formats("tflite_micro")
