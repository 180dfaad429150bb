"""benchmarks/formats.py on the slice model and 300 test digits: every format's row in the JSON."""

import json

from benchmarks import formats as formats_bench
from components.release import formats


def test_the_benchmark_writes_every_format(tmp_path, exported_model, capsys):
    out = tmp_path / "formats.json"
    argv = ["--model-dir", exported_model, "--rows", "300", "--micro-rows", "20", "--no-browser", "--output", str(out)]
    assert formats_bench.main(argv) == 0
    report = json.loads(out.read_text())
    record = report["formats"]
    assert record["missing"] == {} and all(name in record for name in formats.ORDER)
    assert record[formats.SAVED_MODEL]["examples"] == 300 and record[formats.MICRO]["examples"] == 20
    assert report["machine"]["onnxruntime"] and report["machine"]["ai-edge-litert"]
    printed = capsys.readouterr().out
    assert printed.count("\n| ") >= len(formats.ORDER) + 1  # header and one row per format
