"""The adversarial table of one or more SavedModels side by side, on the same test digits: clean
accuracy, FGSM and PGD accuracy at each L-infinity budget (the Adversarial Robustness Toolbox), the
cross-check by this project's own PGD, and each model's training time and settings from its
training record. The release runs the same table on fewer digits and PGD steps
(components/release/adversarial.py).

    python benchmarks/adversarial.py                                  # the newest served version
    python benchmarks/adversarial.py --models serving_model/mnist/A outputs/adversarial/serving/B
    python benchmarks/adversarial.py --examples 200 --steps 10 --output /tmp/a.json
"""

import argparse
import json
import os
import time

import tensorflow as tf

from benchmarks import keras_baseline, output
from components.release import adversarial
from modules import export, idx, push_layout
from pipeline import configs

SERVING_DIR = os.path.join(configs.PROJECT_ROOT, "serving_model", configs.MODEL_NAME)


def run(model_dirs, examples: int, steps: int, cross_check: int, budgets=adversarial.BUDGETS) -> dict:
    images, labels = idx.read_span_pair(keras_baseline.SPAN, "t10k")
    rows = adversarial.spread(len(labels), examples)
    images, labels = images[rows], labels[rows]
    models = {}
    for model_dir in model_dirs:
        started = time.time()
        table = adversarial.evaluate(
            adversarial.transformed_predictor(tf.saved_model.load(model_dir)),
            images,
            labels,
            budgets=budgets,
            steps=steps,
            cross_check_examples=cross_check,
        )
        training = export.read_training_record(model_dir)
        hparams = training.get("hparams", {})
        models[model_dir] = {
            **table,
            "attack_seconds": round(time.time() - started, 1),
            "trainer_fit_seconds": training.get("fit_seconds"),
            "epochs_run": len(training.get("history", {}).get("loss", [])),
            "adversarial_training": {k: v for k, v in hparams.items() if k.startswith("adversarial_")},
        }
        print(json.dumps({model_dir: models[model_dir]}), flush=True)
    return {**adversarial.settings(steps), "budgets": list(budgets), "examples": int(len(labels)), "models": models}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", help="SavedModel version directories (default: the newest served)")
    p.add_argument("--examples", type=int, default=2000, help="test digits, spread over the 10,000")
    p.add_argument("--steps", type=int, default=40, help="PGD steps (Madry et al.'s 40)")
    p.add_argument("--cross-check", type=int, default=500, help="digits the project's own PGD attacks too")
    p.add_argument("--output", default=output.result_path("adversarial.json"))
    args = p.parse_args(argv)
    model_dirs = args.models
    if not model_dirs:
        served = push_layout.version_dirs(SERVING_DIR)
        if not served:
            raise SystemExit(f"no served version under {SERVING_DIR}: run the pipeline or pass --models")
        model_dirs = [served[max(served)]]
    result = run(model_dirs, args.examples, args.steps, args.cross_check)
    output.write_json(result, args.output)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
