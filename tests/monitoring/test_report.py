"""The monitor's report: the pictures received beside what the model saw."""

import numpy as np

from monitoring import report
from monitoring.request_logs import PictureSample
from serving.clients.images import png


def _result() -> dict:
    problems = {"files": 1, "records": 2, "truncated_files": 0, "bad_records": 0}
    return {
        "model_name": "mnist",
        "window": {"label": "a window"},
        "verdict": "QUIET",
        "log_problems": problems,
        "rows": 1,
        "unknown_versions": {},
        "versions": {},
        "drift": None,
    }


def test_received_pictures_are_shown_beside_the_image_the_model_saw(tmp_path, test_images_labels):
    digit = test_images_labels[0][0]
    photo = png(np.full((300, 200, 3), 220, np.uint8))
    samples = [
        PictureSample("<id>", 0, photo, digit, True, 7),
        PictureSample("blank", 0, photo, np.zeros((28, 28), np.uint8), False, -1),
        PictureSample("broken", 1, b"not a picture", np.zeros((28, 28), np.uint8), False, -1),
    ]
    page = open(report.write(_result(), {report.RECEIVED_PICTURES: samples}, str(tmp_path))).read()
    assert "Pictures received, and what the model saw" in page
    assert "&lt;id&gt;/0" in page and "<id>" not in page  # text from the log is escaped
    assert "no digit" in page and "13 bytes that do not decode" in page
    received = tmp_path / report.PLOTS_DIR / "received_0.png"
    seen = tmp_path / report.PLOTS_DIR / "seen_0.png"
    from PIL import Image

    assert Image.open(received).size == (75, 112)  # 200x300 fitted into the thumbnail
    shown = np.asarray(Image.open(seen))
    assert shown.shape == (112, 112)
    np.testing.assert_array_equal(shown[::4, ::4], digit)  # the 28x28 drawn 4 times larger


def test_a_versions_least_confident_answers_are_drawn_with_their_maps(tmp_path, test_images_labels):
    result = _result()
    result["versions"] = {"3": {"rows": 2, "checks": []}}
    result["low_confidence_bound"] = 0.5
    maps = np.random.default_rng(0).normal(size=(2, 28, 28)).astype(np.float32)
    why = {
        "images": test_images_labels[0][:2],
        "answers": np.array([7, 2]),
        "top": np.array([0.41, 0.45]),
        "maps": maps,
    }
    drawn = {
        "pixel_curves": {},
        "served_mix": np.full(10, 0.1),
        "test_mix": np.full(10, 0.1),
        "top_probabilities": np.array([0.41, 0.45]),
        "why": why,
    }
    page = open(report.write(result, {"3": drawn}, str(tmp_path))).read()
    assert "Version 3: the least confident answers and why" in page
    assert (tmp_path / report.PLOTS_DIR / "why_3.png").stat().st_size > 1000
