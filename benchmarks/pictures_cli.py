"""The picture benchmark's files read as a user reads them: `python -m serving.clients.cli --rest URL
predict FILES...` against serving.server, one command per folder (family, strength and suite), each
answer compared with the label in the file's name (`NNN_labelL.png`) and with the class the
SavedModel's predict_pictures gives the same bytes in this process.

    python benchmarks/pictures_cli.py                   # newest version in serving_model/mnist
    python benchmarks/pictures_cli.py --model-dir DIR --rows 20

The files are the first --rows digits of every family (benchmarks/pictures.py --write-pictures,
the same pages the benchmark reads). Writes benchmarks/results/pictures_cli.json.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks import output
from benchmarks import pictures as suite
from benchmarks.serving_bench import newest_version_dir, serving_folder
from pipeline import configs
from pipeline.configs import PROJECT_ROOT
from serving.clients import images
from serving.tools.process import ServerProcess

LABEL = re.compile(r"_label(\d)\.")


def cli_predict(rest_url: str, files) -> list:
    """The CLI's answers for the files: a class, or None for "no digit"."""
    out = subprocess.run(
        [sys.executable, "-m", "serving.clients.cli", "--rest", rest_url, "predict", *files],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    return [answer["class"] for answer in json.loads(out.stdout)]


def folders(root: str):
    """(suite, folder path) for every folder of pictures under root."""
    for suite_name in sorted(os.listdir(root)):
        for family in sorted(os.listdir(os.path.join(root, suite_name))):
            if os.path.isdir(os.path.join(root, suite_name, family)):
                yield suite_name, os.path.join(root, suite_name, family)


def run(model_dir: str, rows: int, pictures_dir: str) -> dict:
    predict_pictures, predict_images, clean_arrays = suite.in_process(model_dir)
    suite.run(predict_pictures, predict_images, clean_arrays, rows, write_to=pictures_dir)
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        with ServerProcess(serving_folder(tmp, model_dir), configs.MODEL_NAME) as server:
            for suite_name, folder in folders(pictures_dir):
                files = sorted(os.path.join(folder, name) for name in os.listdir(folder))
                answers = cli_predict(server.rest_url, files)
                classes, found = predict_pictures([images.load(f) for f in files])
                in_process = [int(c) if f else None for c, f in zip(classes, found)]
                labels = [int(LABEL.search(os.path.basename(f)).group(1)) for f in files]
                total = counts.setdefault(suite_name, {"files": 0, "label": 0, "in-process class": 0})
                total["files"] += len(files)
                total["label"] += int(np.sum([a == label for a, label in zip(answers, labels)]))
                total["in-process class"] += int(np.sum([a == c for a, c in zip(answers, in_process)]))
    return {"model_dir": model_dir, "rows": rows, "suites": counts}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="a pushed version directory (default: newest in serving_model/mnist)")
    p.add_argument("--rows", type=int, default=20, help="digits per family and suite, 1 to 20")
    p.add_argument("--pictures-dir", help="where the files are written (default: a temporary folder)")
    p.add_argument("--output", default=output.result_path("pictures_cli.json"))
    args = p.parse_args(argv)
    if not 1 <= args.rows <= 20:
        p.error("--rows: 1 to 20 (the benchmark writes the first 20 pictures of each family)")
    if args.pictures_dir and os.path.isdir(args.pictures_dir) and os.listdir(args.pictures_dir):
        p.error(f"--pictures-dir {args.pictures_dir} is not empty: its files would be counted with the new ones")
    model_dir = args.model_dir or newest_version_dir()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(model_dir, args.rows, args.pictures_dir or tmp)
    output.write_json(report, args.output)
    print(json.dumps(report["suites"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
