"""The explanations' cost benchmark, small: one request per path and batch, one export with and one
without the explain signatures, and a one-point step sweep on 4 digits (on the tests' Transform output)."""

import json

from benchmarks import explain_cost


def test_the_benchmark_measures_explain_beside_predict_and_the_export_both_ways(
    exported_model, trained_model, transform_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(explain_cost, "newest_transform_graph", lambda: transform_dir)
    out = tmp_path / "explain_cost.json"
    sweep = explain_cost.steps_sweep
    monkeypatch.setattr(explain_cost, "steps_sweep", lambda rows: sweep(rows, trained_model))  # trained already
    monkeypatch.setattr(explain_cost, "SWEEP_STEPS", (8,))
    args = ["--model-dir", exported_model, "--requests", "1", "--rounds", "1", "--export-repeats", "1"]
    assert explain_cost.main([*args, "--sweep-rows", "4", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    cells = {(r["path"], r["signature"], r["batch"]) for r in report["results"]}
    assert len(cells) == 12 and all(r["errors"] == 0 for r in report["results"])
    without, with_ = report["export"]
    assert not without["explain_signatures"] and with_["explain_signatures"]
    assert with_["saved_model_bytes"] > without["saved_model_bytes"]
    assert [r["steps"] for r in report["steps"]] == [8] and all(r["ms_per_row"] > 0 for r in report["steps"])
