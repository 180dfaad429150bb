"""The picture-latency benchmark, small: every path and input kind measured without errors."""

from benchmarks import picture_latency


def test_every_path_reads_every_kind_of_input_without_errors(exported_model):
    report = picture_latency.run(exported_model, requests_per_client=2, rounds_per_cell=1, batches=(2,))
    rows = report["results"]
    assert {(r["path"], r["input"]) for r in rows} == {
        (path, kind) for path in ("in-process", "rest", "grpc") for kind in picture_latency.INPUTS
    }
    assert all(r["errors"] == 0 and r["requests"] == 2 and r["p50_ms"] > 0 for r in rows)
    jpeg = [r for r in rows if r["input"] == "2000x2000 JPEG"]
    assert all(r["bytes_per_picture"] > 10_000 for r in jpeg)
    assert "| grpc | 2000x2000 JPEG | predict_pictures | 2 |" in picture_latency.table(report)
