"""The picture benchmark, small: a few digits of each suite on every family's pages, read by the
test model's picture signature, the report, its table and the pictures written for the CLI."""

import json
import os

import numpy as np

from benchmarks import pictures


def test_the_benchmark_reports_every_family_and_blank_pages_come_back_no_digit(exported_model, tmp_path, capsys):
    out, folder = tmp_path / "pictures.json", tmp_path / "pictures"
    args = ["--model-dir", exported_model, "--rows", "6", "--write-pictures", str(folder), "--output", str(out)]
    assert pictures.main(args) == 0
    report = json.loads(out.read_text())
    assert set(report["suites"]) == {"mnist test", "uci other writers"}
    keys = {f"{family}: {s}" for family, strengths in pictures.FAMILIES.items() for s, _, _ in strengths}
    for suite in report["suites"].values():
        assert set(suite["families"]) == keys
    assert report["blank pages"] == {"pages": 6, "no digit": 1.0} and report["meets"]["blank"]
    # On MNIST's own digits the ordinary pages read about as well as the clean arrays.
    mnist = report["suites"]["mnist test"]
    ordinary = [
        mnist["families"][f"{family}: {s}"]["accuracy"]
        for family, strengths in pictures.FAMILIES.items()
        for s, _, o in strengths
        if o
    ]
    assert np.mean(ordinary) >= mnist["clean arrays"] - 0.1, (np.mean(ordinary), mnist["clean arrays"])
    assert all(mnist["families"][k]["no digit"] == 0.0 for k in keys if not k.startswith("small"))
    table = capsys.readouterr().out
    assert all(f"| {family} |" in table for family in pictures.FAMILIES)
    summary = pictures.family_table(report).splitlines()
    assert len(summary) == 4 + len(pictures.FAMILIES) and summary[0].count("|") == 6
    assert all(
        set(suite["pen on arrays"]) == {s for s, _, _ in pictures.FAMILIES["pen"]}
        for suite in report["suites"].values()
    )
    written = os.listdir(folder / "mnist_test" / "paper_grey_180")
    assert len(written) == 6 and all(name.endswith(".png") for name in written)


def test_a_page_sizes_the_digit_by_its_ink_not_by_the_margin_around_it():
    """MNIST's 28x28 keeps a margin around a 20x20 box, a UCI scan has none: both digits' ink
    comes out the same size on the page."""
    ink = np.zeros((20, 12), np.uint8)
    ink[:, 4:8] = 255
    with_margin = np.zeros((28, 28), np.uint8)
    with_margin[4:24, 8:20] = ink
    page = pictures.Page(side=100, digit=0.5)
    assert pictures._ink_alpha(with_margin, page, 50).shape == pictures._ink_alpha(ink, page, 50).shape == (50, 10)


def test_pen_arrays_widen_and_narrow_the_strokes():
    digit = np.zeros((1, 28, 28), np.uint8)
    digit[0, 4:24, 12:16] = 255
    ink = {pen: int((pictures.pen_arrays(digit, pen) > 0).sum()) for pen in (-1, 1, 2)}
    assert ink[-1] < (digit > 0).sum() < ink[1] < ink[2]
