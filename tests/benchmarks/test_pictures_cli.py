"""The CLI over the picture benchmark's files, small: two digits of two families per suite, read through
`python -m serving.clients.cli` against serving.server, every answer the in-process class."""

import json

from benchmarks import pictures, pictures_cli


def test_the_cli_answers_each_written_picture_as_the_savedmodel_does(exported_model, tmp_path, monkeypatch):
    # Two families of the benchmark's: one CLI command per folder, so the small version stays small.
    monkeypatch.setattr(pictures, "FAMILIES", {k: pictures.FAMILIES[k] for k in ("paper grey", "pen")})
    out = tmp_path / "pictures_cli.json"
    assert pictures_cli.main(["--model-dir", exported_model, "--rows", "2", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    strengths = 2 * sum(len(s) for s in pictures.FAMILIES.values())
    assert set(report["suites"]) == {"mnist_test", "uci_other_writers"}
    for counts in report["suites"].values():
        assert counts["files"] == strengths and counts["in-process class"] == strengths
    assert report["suites"]["mnist_test"]["label"] >= strengths // 2  # one digit, every page


def test_a_file_name_gives_its_label():
    assert pictures_cli.LABEL.search("007_label3.png").group(1) == "3"
