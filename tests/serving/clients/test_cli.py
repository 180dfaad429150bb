"""`python -m serving.clients.cli predict` on picture files: each file's answer from predict_pictures, a
blank page said to hold no digit, the same answers as the signature in process."""

import json

import numpy as np
import tensorflow as tf

from benchmarks import pictures as suite
from modules import signatures
from serving.clients import cli
from tests.serving.conftest import MODEL_NAME


def test_predict_reads_picture_files_and_says_no_digit_for_a_blank_page(
    dev_server, exported_model, test_images_labels, tmp_path, capsys
):
    rng = np.random.default_rng(0)
    pages = [suite.render(d, suite.Page(paper=200, jpeg=85), rng) for d in test_images_labels[0][:3]]
    pages.append(suite.blank_pages(1)[0])
    files = []
    for i, data in enumerate(pages):
        path = tmp_path / f"page{i}.{'jpg' if i < 3 else 'png'}"
        path.write_bytes(data)
        files.append(str(path))
    assert cli.main(["--rest", dev_server.rest_url, "--model", MODEL_NAME, "predict", *files]) == 0
    answers = json.loads(capsys.readouterr().out)
    expected = (
        tf.saved_model.load(exported_model)
        .signatures[signatures.PICTURES_SIGNATURE](pictures=tf.constant(pages))[signatures.CLASSES_OUTPUT]
        .numpy()
    )
    assert [a["file"] for a in answers] == files
    # What a label sent back later is keyed by: the server's id for the request, the picture's row.
    assert len({a["request_id"] for a in answers}) == 1 and answers[0]["request_id"]
    assert [a["row"] for a in answers] == list(range(len(files)))
    assert [a["class"] for a in answers[:3]] == expected[:3].tolist()
    assert answers[3]["class"] is None and "no ink" in answers[3]["no digit"]


def test_explain_writes_a_heat_map_beside_each_picture_over_rest_and_grpc(
    dev_server, exported_model, test_images_labels, tmp_path, capsys
):
    from PIL import Image

    rng = np.random.default_rng(0)
    page = tmp_path / "page.png"
    page.write_bytes(suite.render(test_images_labels[0][0], suite.Page(paper=210), rng))
    blank = tmp_path / "blank.png"
    blank.write_bytes(suite.blank_pages(1)[0])
    for where in (["--rest", dev_server.rest_url], ["--grpc", dev_server.grpc_target]):
        assert cli.main([*where, "--model", MODEL_NAME, "explain", str(page), str(blank), "--target", "4"]) == 0
        answers = json.loads(capsys.readouterr().out)
        assert answers[0]["explained class"] == 4 and answers[0]["heat map"] == str(tmp_path / "page.png.explained.png")
        assert answers[1]["class"] is None
        heat = np.asarray(Image.open(answers[0]["heat map"])).astype(int)
        # Red where pixels raised class 4's probability, blue where they lowered it: both appear on a digit.
        red = (heat[:, :, 0] - heat[:, :, 2] > 60).sum()
        blue = (heat[:, :, 2] - heat[:, :, 0] > 60).sum()
        assert heat.shape == (280, 280, 3) and red > 100 and blue > 100, (red, blue)
    assert not (tmp_path / "blank.png.explained.png").exists()
