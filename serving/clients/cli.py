"""Command line for a TF Serving endpoint (the real one or serving.server), over REST or gRPC.

python -m serving.clients.cli --rest http://127.0.0.1:8501 status
python -m serving.clients.cli --grpc 127.0.0.1:8500 metadata
python -m serving.clients.cli --rest http://127.0.0.1:8501 predict digit.png another.jpg
python -m serving.clients.cli --rest http://127.0.0.1:8501 explain digit.png   # writes digit.png.explained.png
python -m serving.clients.cli --grpc 127.0.0.1:8500 evaluate --data-dir data/mnist/span-1
"""

import argparse
import json
import sys

import numpy as np

from modules import idx
from serving.clients import images
from serving.clients.rest_client import RestClient, ServingRequestError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--rest", metavar="URL", help="REST endpoint, e.g. http://127.0.0.1:8501")
    where.add_argument("--grpc", metavar="HOST:PORT", help="gRPC endpoint, e.g. 127.0.0.1:8500")
    p.add_argument("--model", default="mnist", help="model name on the server")
    p.add_argument("--version", type=int, help="a specific version (default: the newest served)")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="versions and their states")
    commands.add_parser("metadata", help="the model's signatures")
    predict = commands.add_parser(
        "predict", help="classify pictures (PNG, JPEG, BMP, GIF files: photos, scans) through predict_pictures"
    )
    predict.add_argument("files", nargs="+")
    explain = commands.add_parser(
        "explain",
        help="as predict, then integrated gradients of the answer on the 28x28 the model saw: a heat map"
        " PNG beside each file (FILE.explained.png, replaced if it is a file; red raised the answer, blue lowered it)",
    )
    explain.add_argument("files", nargs="+")
    explain.add_argument("--target", type=int, help="explain this class (0-9) instead of the answer")
    evaluate = commands.add_parser("evaluate", help="accuracy over the MNIST test IDX files in --data-dir")
    evaluate.add_argument("--data-dir", required=True, help="folder with t10k-images/labels IDX files")
    evaluate.add_argument("--limit", type=int, help="only the first N test images")
    evaluate.add_argument("--batch-size", type=int, default=100)
    return p.parse_args(argv)


def client_for(args):
    if args.rest:
        return RestClient(args.rest, args.model)
    from serving.clients.grpc_client import GrpcClient  # TensorFlow's protos: loaded only for gRPC

    return GrpcClient(args.grpc, args.model)


def explain(client, files, target=None, version=None) -> list:
    """Each picture read by predict_pictures, then explained on the 28x28 image the model saw; the
    heat map written beside the picture."""
    import os

    seen = client.predict_pictures([images.load(f) for f in files], version)
    found = [i for i, f in enumerate(seen.digit_found) if f]
    result = [{"file": f, "class": None, "no digit": "no ink found on the picture"} for f in files]
    if not found:
        return result
    targets = None if target is None else [target] * len(found)
    explained = client.explain_images(seen.images[found], targets, version)
    for row, i in enumerate(found):
        path = files[i] + ".explained.png"  # one per input file, whatever its extension
        # O_NOFOLLOW: a link planted at that name is refused, not written through.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(descriptor, "wb") as f:
            f.write(images.heat_map(seen.images[i], explained.attributions[row]))
        result[i] = {
            "file": files[i],
            "class": int(explained.classes[row]),
            "explained class": int(explained.targets[row]),
            "probabilities": [round(float(x), 4) for x in explained.probabilities[row]],
            "heat map": path,
        }
    return result


def evaluate(client, data_dir: str, limit=None, batch_size: int = 100) -> dict:
    """Accuracy of the served model on the test IDX files, every image sent through the API."""
    test_images, labels = idx.read_span_pair(data_dir, "t10k")
    test_images, labels = test_images[:limit], labels[:limit]
    correct = 0
    for start in range(0, len(labels), batch_size):
        prediction = client.predict_images(test_images[start : start + batch_size])
        correct += int(np.sum(prediction.classes == labels[start : start + batch_size]))
    return {"examples": int(len(labels)), "correct": correct, "accuracy": correct / len(labels)}


def main(argv=None) -> int:
    args = parse_args(argv)
    client = client_for(args)
    try:
        if args.command == "status":
            result = client.status(args.version)
        elif args.command == "metadata":
            result = client.metadata(args.version)
        elif args.command == "predict":
            prediction = client.predict_pictures([images.load(f) for f in args.files], args.version)
            # The request id and the picture's row in the request: the key a label sent back later
            # needs (python -m monitoring.feedback --labels: request_id,row,label).
            ids = {"request_id": prediction.request_id} if prediction.request_id else {}
            result = [
                {"file": f, **ids, "row": row, "class": int(c), "probabilities": [round(float(x), 4) for x in p]}
                if found
                else {"file": f, **ids, "row": row, "class": None, "no digit": "no ink found on the picture"}
                for row, (f, c, p, found) in enumerate(
                    zip(args.files, prediction.classes, prediction.probabilities, prediction.digit_found)
                )
            ]
        elif args.command == "explain":
            result = explain(client, args.files, args.target, args.version)
        else:
            result = evaluate(client, args.data_dir, args.limit, args.batch_size)
    except ServingRequestError as e:
        print(f"error from the server ({e.status}): {e.message}", file=sys.stderr)
        return 1
    except OSError as e:  # unreachable endpoint, unreadable file
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
