"""runs.report: the decision line for each way a run ends, and the page for a run that stopped
early (no model, no evaluation), its text escaped."""

from runs import report


def _summary(**changes):
    base = {
        "run_id": "run-1",
        "components": {"IdxExampleGen": {"state": "COMPLETE", "wall_seconds": 1.5}},
        "error": None,
        "blessed": True,
        "pushed": True,
        "test_accuracy": 0.99123,
        "min_accuracy": 0.99,
        "pushed_version": 7,
        "validation_failures": [],
    }
    return {**base, **changes}


def test_the_decision_names_how_the_run_ended():
    assert report.decision(_summary()) == (
        "BLESSED: test accuracy 0.9912 met the bound 0.99 and did not regress past the baseline; pushed version 7."
    )
    assert report.decision(_summary(pushed=False)) == "BLESSED but not pushed: see the log"
    refused = report.decision(_summary(blessed=False, pushed=False, validation_failures=["a", "b"]))
    assert refused == "NOT BLESSED: nothing pushed. a; b"
    assert report.decision(_summary(blessed=False, pushed=False)).endswith("no reason recorded")
    stopped = _summary(
        error="ValueError: bad span",
        components={"IdxExampleGen": {"state": "FAILED", "wall_seconds": 0.1}},
        blessed=None,
        pushed=False,
    )
    assert report.decision(stopped) == "RUN STOPPED at IdxExampleGen: nothing pushed. ValueError: bad span"


def test_a_run_stopped_before_training_gets_a_page_without_plots(tmp_path):
    stopped = _summary(
        run_id="<script>alert(1)</script>",
        error="ValueError: images are 27x27 & not 28x28",
        components={"IdxExampleGen": {"state": "FAILED", "wall_seconds": 0.2}},
        blessed=None,
        pushed=False,
    )
    path = report.write(stopped, str(tmp_path))
    page = open(path).read()
    assert (
        "<p class='decision'>RUN STOPPED at IdxExampleGen: nothing pushed. ValueError: images are 27x27 &amp;" in page
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<td>IdxExampleGen</td><td>FAILED</td><td>0.2</td>" in page
    assert "<img" not in page and "<h2>Training</h2>" not in page  # nothing trained, nothing plotted
