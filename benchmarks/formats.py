"""Every format of a served version side by side, in one process on this machine: file size, test
accuracy on MNIST's whole test split, and batch-1 and batch-32 latency (median) for the SavedModel
in process, LiteRT (three TFLite kinds), TFLite Micro's interpreter, ONNX Runtime, and the page in
headless Chromium (ONNX Runtime Web, through the page's own classifyPixels, every test digit).

The formats are made and checked by the release's own code (components/release/formats.py), here
with TFLite Micro on the whole test split instead of the release's 200 digits. The full-integer
model is calibrated on the same training rows as the release's (the ExampleGen output named in the
version's release.json), and the report says whether its bytes are the shipped file's.

    python benchmarks/formats.py                       # newest version in serving_model/mnist
    python benchmarks/formats.py --model-dir DIR --micro-rows 1000 --no-browser

Writes benchmarks/results/formats.json and prints a Markdown table.
"""

import argparse
import json
import os
import platform
import sys
import tempfile

import numpy as np

from benchmarks import output
from benchmarks.serving_bench import newest_version_dir, serving_folder
from components.release import confidence, formats, inputs, tflite
from modules import idx
from modules.push_layout import RELEASE_FILE
from pipeline import configs
from pipeline.configs import DATA_ROOT
from serving.tools import headless
from serving.tools.process import ServerProcess

BROWSER = "browser"
BROWSER_BATCH_32_IMAGES = 3200  # 100 calls of 32


def in_browser(model_dir: str, images: np.ndarray, labels: np.ndarray, reference: np.ndarray) -> dict:
    """The page's classes and per-call time on images, served by serving.server over model_dir."""
    with tempfile.TemporaryDirectory() as tmp:
        with ServerProcess(serving_folder(tmp, model_dir), configs.MODEL_NAME) as server:
            driver = headless.chromium()
            try:
                driver.get(server.rest_url + "/")
                where = headless.page_ready(driver)
                if where != headless.IN_PAGE:
                    return {"missing": f"the page did not load its model: answers come from {where}"}
                classes, batch_1 = headless.classify_in_page(driver, images, batch=1)
                _, batch_32 = headless.classify_in_page(driver, images[:BROWSER_BATCH_32_IMAGES], batch=32)
                version = driver.capabilities.get("browserVersion", "?")
            finally:
                driver.quit()
    return {
        "accuracy": round(float(np.mean(classes == labels)), 5),
        "same_class_as_saved_model": int(np.sum(classes == reference)),
        "examples": int(len(labels)),
        "latency_ms": {"batch_1": round(batch_1, 3), "batch_32": round(batch_32, 3)},
        "runtime": f"ONNX Runtime Web (WebAssembly, 1 thread) in headless Chromium {version}",
    }


def calibration_images(model_dir: str, span: str):
    """(the full-integer model's calibration sample, where it came from): the release's own rows when
    the version's release.json names its ExampleGen output, else a sample of the IDX training file."""
    released = os.path.join(model_dir, RELEASE_FILE)
    if os.path.isfile(released):
        with open(released) as f:
            examples_uri = json.load(f)["data"]["uri"]
        if os.path.isdir(examples_uri):
            pool = inputs.train_images(examples_uri, tflite.CALIBRATION_POOL)
            return tflite.calibration_sample(pool), f"the release's: {examples_uri}"
    train_images, _ = idx.read_span_pair(span, idx.TRAIN_PAIR)
    return tflite.calibration_sample(train_images), "a sample of the IDX training file"


def same_bytes(converted: str, model_dir: str) -> bool:
    shipped = os.path.join(model_dir, os.path.basename(converted))
    if not os.path.isfile(shipped):
        return False
    with open(converted, "rb") as a, open(shipped, "rb") as b:
        return a.read() == b.read()


def machine() -> dict:
    from importlib.metadata import version

    runtimes = ("tensorflow", "ai-edge-litert", "tflite-micro", "onnxruntime", "tf2onnx")
    return {"cpus": os.cpu_count(), "platform": platform.platform(), **{name: version(name) for name in runtimes}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", help="a version directory (default: the newest in serving_model/mnist)")
    parser.add_argument("--micro-rows", type=int, default=10_000, help="test digits TFLite Micro runs (10 ms each)")
    parser.add_argument("--rows", type=int, default=0, help="the first ROWS test digits (default: all 10,000)")
    parser.add_argument("--no-browser", action="store_true", help="skip the page in headless Chromium")
    parser.add_argument("--output", default=output.result_path("formats.json"))
    args = parser.parse_args(argv)
    model_dir = args.model_dir or newest_version_dir()
    span = idx.span_dir(DATA_ROOT, 1)
    images, labels = idx.read_span_pair(span, idx.TEST_PAIR)
    if args.rows:
        images, labels = images[: args.rows], labels[: args.rows]
    predict = confidence.images_predictor(model_dir)
    probabilities = predict(images)
    calibration, source = calibration_images(model_dir, span)
    with tempfile.TemporaryDirectory() as scratch:
        record, files = formats.release_record(
            model_dir,
            images,
            labels,
            probabilities,
            predict,
            calibration,
            scratch,
            micro_rows=args.micro_rows,
        )
        record["calibration"] = source
        for name in (*tflite.KINDS, formats.ONNX):
            if name in record:
                record[name]["same_bytes_as_shipped"] = same_bytes(files[record[name]["file"]], model_dir)
    if not args.no_browser:
        record[BROWSER] = in_browser(model_dir, images, labels, np.argmax(probabilities, axis=-1))
    report = {"model_dir": os.path.abspath(model_dir), "machine": machine(), "formats": record}
    print(f"wrote {output.write_json(report, args.output)}")
    print("| " + " | ".join(formats.TABLE_HEADER) + " |\n|" + "---|" * len(formats.TABLE_HEADER))
    for row in formats.table_rows(record):
        print("| " + " | ".join(row) + " |")
    browser = record.get(BROWSER)
    if browser and "missing" not in browser:
        latency = browser["latency_ms"]
        print(
            f"| in the page | `{os.path.basename(model_dir)}/model.onnx` | (as ONNX) | {browser['accuracy']:.4f} "
            f"| {browser['same_class_as_saved_model']:,}/{browser['examples']:,} | {latency['batch_1']} "
            f"| {latency['batch_32']} | {browser['runtime']} |"
        )
    elif browser:
        print(f"in the page: {browser['missing']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
