"""How the served model holds up on handwriting that is not MNIST's: the official test split under
each family of modules/distortions.py at its three strengths, next to a baseline model.

    python benchmarks/robustness.py                                   # newest serving_model version
    python benchmarks/robustness.py --model-dir A --baseline-dir B --rows 2000

For every (family, strength): accuracy, expected calibration error (15 equal-width bins of the top
probability) and the low-confidence rate (top probability below serving's bound, the share an
operator would route to a person). The targets: clean accuracy >= 99.7% and >= 97% on every
family at its middle strength. Writes benchmarks/results/robustness.json.
"""

import argparse
import json
import sys
import time
from typing import Optional

import numpy as np

from benchmarks import output
from components.release import confidence
from components.release import robustness as scoring
from modules import distortions, idx
from pipeline.configs import DATA_ROOT

CLEAN_TARGET, FAMILY_TARGET = 0.997, 0.97


def evaluate(predict: scoring.Predict, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
    """{"clean": scores, "families": {family: {strength: scores}}, "meets": {...}}."""
    result = scoring.evaluate(predict, images, labels, seed=seed)
    middle = scoring.middle(result)
    result["meets"] = {
        "clean_accuracy_target": CLEAN_TARGET,
        "family_middle_accuracy_target": FAMILY_TARGET,
        "clean": result["clean"]["accuracy"] >= CLEAN_TARGET,
        "every_family_at_middle": all(a >= FAMILY_TARGET for a in middle.values()),
        "families_below_target": sorted(n for n, a in middle.items() if a < FAMILY_TARGET),
    }
    return result


def run(model_dir: str, baseline_dir: Optional[str], rows: int, seed: int = 0) -> dict:
    images, labels = idx.read_span_pair(idx.span_dir(DATA_ROOT, 1), idx.TEST_PAIR)
    images, labels = images[:rows], labels[:rows]
    report = {
        "families": {n: {"strengths": list(f.strengths), "unit": f.unit} for n, f in distortions.FAMILIES.items()}
    }
    for role, directory in (("model", model_dir), ("baseline", baseline_dir)):
        if directory:
            started = time.time()
            report[role] = {"dir": directory, **evaluate(confidence.images_predictor(directory), images, labels, seed)}
            report[role]["seconds"] = round(time.time() - started, 1)
    return report


def table(report: dict) -> str:
    """Accuracy per family at each strength, model (and baseline) side by side, as markdown."""
    roles = [r for r in ("model", "baseline") if r in report]
    lines = ["| family | strength | " + " | ".join(roles) + " |", "|---|---|" + "---|" * len(roles)]
    lines.append("| clean | - | " + " | ".join(f"{report[r]['clean']['accuracy']:.4f}" for r in roles) + " |")
    for name, family in report["families"].items():
        for strength in family["strengths"]:
            cells = " | ".join(f"{report[r]['families'][name][str(strength)]['accuracy']:.4f}" for r in roles)
            lines.append(f"| {name} | {strength} {family['unit']} | {cells} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="a pushed version directory (default: newest in serving_model/mnist)")
    p.add_argument("--baseline-dir", help="another version directory, scored side by side")
    p.add_argument("--rows", type=int, default=10000, help="the first N rows of the official test split")
    p.add_argument("--output", default=output.result_path("robustness.json"))
    args = p.parse_args(argv)
    if args.model_dir is None:
        from benchmarks.serving_bench import newest_version_dir

        args.model_dir = newest_version_dir()
    report = run(args.model_dir, args.baseline_dir, args.rows)
    output.write_json(report, args.output)
    print(table(report))
    print(json.dumps({r: report[r]["meets"] for r in ("model", "baseline") if r in report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
