"""How the model holds up against deliberate attacks: test digits perturbed within an L-infinity
budget on the [0, 1] pixel scale to make the model answer wrong, scored for accuracy.

The attacks are the Adversarial Robustness Toolbox's (`adversarial-robustness-toolbox`, its
TensorFlow v2 classifier): FGSM (one signed-gradient step of the budget) and PGD (PGD_STEPS steps
of 2.5 budgets / PGD_STEPS from one random start, Madry et al.'s setting). They attack the
SavedModel's `predict_transformed_uncalibrated` (the CNN on the Transform's output, before the
temperature, which changes no class) through the cross-entropy of its probabilities; the pictures
are the Transform's pixel / 255, which the SavedModel's own `transform_images` is checked to do.
A plain TensorFlow PGD of this project's (modules/adversarial.py) attacks the first
CROSS_CHECK_EXAMPLES of the same digits with the same settings: the two accuracies must agree
within CROSS_CHECK_MARGIN at every budget, or the record says they do not. The check is of the
wiring (the right model, scale, labels and loss), not of the attack's strength: both follow the
same gradients, so a model that hid its gradients would fool both alike. The accuracy to quote is
the worst case, a digit held only if neither FGSM nor PGD broke it.

The release scores the pushed model and the version it replaces on `examples` test digits spread
over the split (release.json "adversarial", the model card and the run report);
benchmarks/adversarial.py runs the same table on more digits and steps.
"""

import logging
import warnings
from importlib import metadata
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from modules import adversarial, features
from modules.hparams import check_budget

log = logging.getLogger(__name__)

BUDGETS = (0.05, 0.1, 0.2, 0.3)  # 0.3: the budget MNIST's adversarial-training results are quoted at
PGD_STEPS = 20  # half Madry et al.'s 40, for the release's time; benchmarks/adversarial.py runs 40
CROSS_CHECK_EXAMPLES = 200
# Two PGDs from different random starts on the same 200 digits: a digit near the edge of its budget
# may fall to one and not the other. 0.05 is 10 of 200 digits.
CROSS_CHECK_MARGIN = 0.05
SEED = 0

Predict = Callable[[tf.Tensor], tf.Tensor]  # [n, 784] float pixels in [0, 1] -> probabilities [n, 10]


def transformed_predictor(loaded) -> Predict:
    """The loaded SavedModel's CNN on [0, 1] pixels; a ValueError when the model has no such
    function (a version exported before it existed) or its Transform is not pixel / 255, in which
    case budgets on the [0, 1] scale would not be the served model's."""
    for name in ("predict_transformed_uncalibrated", "transform_images"):
        if not hasattr(loaded, name):
            raise ValueError(f"the SavedModel has no {name} function")
    every_value = np.arange(features.NUM_PIXELS, dtype=np.int64) % 256
    pixels = every_value.astype(np.uint8).reshape(1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH)
    transformed = np.asarray(loaded.transform_images(tf.constant(pixels))).reshape(-1)
    if np.abs(transformed - every_value / 255.0).max() > 1e-6:
        raise ValueError("the SavedModel's Transform is not pixel / 255: [0, 1] budgets would not be its own")

    def predict(pixels):  # holds `loaded`: its variables live as long as the predictor
        return loaded.predict_transformed_uncalibrated(tf.cast(pixels, tf.float32))["probabilities"]

    return predict


def _art():
    """ART's classifier and attack classes (imported on first use: ART loads scikit-learn and more)."""
    with warnings.catch_warnings():  # ART warns that PyTorch is not installed; nothing here uses it
        warnings.simplefilter("ignore")
        from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier
    return TensorFlowV2Classifier, FastGradientMethod, ProjectedGradientDescent


def _art_classifier(predict: Predict):
    TensorFlowV2Classifier = _art()[0]

    def log_probabilities(x, training=False):  # ART's loss wants logits; log p gives the same softmax
        return tf.math.log(tf.maximum(predict(x), adversarial.TINY))

    return TensorFlowV2Classifier(
        model=log_probabilities,
        nb_classes=features.NUM_CLASSES,
        input_shape=(features.NUM_PIXELS,),
        loss_object=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )


def _correct(predict: Predict, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.argmax(np.asarray(predict(tf.constant(x))), axis=1) == labels


def art_correct(predict: Predict, x: np.ndarray, labels: np.ndarray, budgets: Sequence[float], steps: int):
    """{"fgsm": {budget: per-digit right answers}, "pgd": {...}} from ART's attacks."""
    _, FastGradientMethod, ProjectedGradientDescent = _art()
    classifier = _art_classifier(predict)
    one_hot = np.eye(features.NUM_CLASSES, dtype=np.float32)[labels]
    result: Dict[str, Dict[float, np.ndarray]] = {"fgsm": {}, "pgd": {}}
    np.random.seed(SEED)  # ART draws PGD's random start from NumPy's global generator
    for budget in budgets:
        fgsm = FastGradientMethod(classifier, eps=budget, batch_size=len(x))
        result["fgsm"][budget] = _correct(predict, fgsm.generate(x, y=one_hot), labels)
        pgd = ProjectedGradientDescent(
            classifier,
            eps=budget,
            eps_step=adversarial.step_size(budget, steps),
            max_iter=steps,
            num_random_init=1,
            batch_size=len(x),
            verbose=False,
        )
        result["pgd"][budget] = _correct(predict, pgd.generate(x, y=one_hot), labels)
    return result


def own_pgd_correct(predict: Predict, x: np.ndarray, labels: np.ndarray, budgets: Sequence[float], steps: int):
    """{budget: per-digit right answers} under modules/adversarial.pgd with ART's settings."""
    result = {}
    for budget in budgets:
        start = adversarial.random_start(x.shape, budget, seed=SEED)
        attacked = adversarial.pgd(predict, tf.constant(x), tf.constant(labels), budget, steps, start)
        result[budget] = _correct(predict, attacked.numpy(), labels)
    return result


def _mean(correct: Dict[float, np.ndarray]) -> Dict[str, float]:
    return {str(budget): round(float(np.mean(values)), 4) for budget, values in correct.items()}


def evaluate(
    predict: Predict,
    images: np.ndarray,
    labels: np.ndarray,
    budgets: Sequence[float] = BUDGETS,
    steps: int = PGD_STEPS,
    cross_check_examples: int = CROSS_CHECK_EXAMPLES,
) -> Dict[str, Any]:
    """One model's table on uint8 images [n, 28, 28]: clean, FGSM and PGD accuracy per budget, and
    the cross-check of ART's PGD by modules/adversarial.pgd on the first cross_check_examples (0:
    none, as for the replaced version: the check is of the attack, not of the model)."""
    budgets = [check_budget(b) for b in budgets]
    x = images.reshape(len(images), features.NUM_PIXELS).astype(np.float32) / features.MAX_PIXEL_VALUE
    labels = np.asarray(labels).astype(np.int64)
    art = art_correct(predict, x, labels, budgets, steps)
    result = {
        "examples": int(len(labels)),
        "clean_accuracy": round(float(np.mean(_correct(predict, x, labels))), 4),
        "fgsm": _mean(art["fgsm"]),
        "pgd": _mean(art["pgd"]),
        # A digit counts as held only if neither attack broke it: the accuracy to quote.
        "worst_case": _mean({b: art["fgsm"][b] & art["pgd"][b] for b in budgets}),
        "cross_check": None,
    }
    rows = min(cross_check_examples, len(labels))
    if rows:
        own = own_pgd_correct(predict, x[:rows], labels[:rows], budgets, steps)
        art_rows = {budget: art["pgd"][budget][:rows] for budget in budgets}
        difference = max(abs(float(np.mean(own[b])) - float(np.mean(art_rows[b]))) for b in budgets)
        result["cross_check"] = {
            "examples": rows,
            "art_pgd": _mean(art_rows),
            "own_pgd": _mean(own),
            "largest_difference": round(difference, 4),
            "margin": CROSS_CHECK_MARGIN,
            "agrees": difference <= CROSS_CHECK_MARGIN,
        }
    return result


def settings(steps: int = PGD_STEPS) -> Dict[str, str]:
    """The attacks in words, as release.json and the benchmark record them."""
    return {
        "library": f"adversarial-robustness-toolbox {metadata.version('adversarial-robustness-toolbox')}",
        "scale": "pixels in [0, 1]; budgets are L-infinity distances",
        "fgsm_attack": "one step of the budget",
        "pgd_attack": f"{steps} steps of 2.5 x budget / {steps}, one random start",
        "loss": "cross-entropy of the probabilities before the temperature",
    }


def spread(count: int, examples: int) -> np.ndarray:
    """`examples` row indices spread evenly over `count` rows: the test file's first digits are
    not its typical ones (the first 500 of MNIST's all scored 1.0 here)."""
    return np.unique(np.linspace(0, count - 1, min(examples, count)).astype(np.int64))


def release_record(
    loaded, images: np.ndarray, labels: np.ndarray, examples: int, baseline_loaded=None, baseline_version=None
) -> Optional[Dict[str, Any]]:
    """release.json's "adversarial": the pushed model's table on `examples` test digits spread over
    the split and, when it can be scored, the replaced version's on the same digits. None when
    examples is 0."""
    if examples <= 0:
        return None
    rows = spread(len(labels), examples)
    images, labels = images[rows], labels[rows]
    model = evaluate(transformed_predictor(loaded), images, labels)
    if not model["cross_check"]["agrees"]:
        log.warning("adversarial: ART's PGD and modules/adversarial.pgd disagree: %s", model["cross_check"])
    previous, note = None, None
    if baseline_loaded is not None:
        try:
            previous = evaluate(transformed_predictor(baseline_loaded), images, labels, cross_check_examples=0)
        except ValueError as error:
            note = f"version {baseline_version} is not scored: {error}"
            log.warning("adversarial: %s", note)
    return {
        **settings(),
        "budgets": list(BUDGETS),
        **model,
        "baseline": str(baseline_version) if previous else None,
        "baseline_note": note,
        "baseline_clean_accuracy": previous["clean_accuracy"] if previous else None,
        "baseline_fgsm": previous["fgsm"] if previous else None,
        "baseline_pgd": previous["pgd"] if previous else None,
        "baseline_worst_case": previous["worst_case"] if previous else None,
    }


def table_header(record: Dict[str, Any]) -> List[str]:
    replaced = f"version {record['baseline']}" if record.get("baseline") else "replaced version"
    return ["attack", "budget (L-inf)", "accuracy", replaced]


def table_rows(record: Dict[str, Any]) -> List[List[str]]:
    """[attack, budget, accuracy, the replaced version's accuracy]: clean first, then FGSM, PGD and
    the worst case (a digit held only if both attacks failed on it)."""

    def cell(value):
        return f"{value:.4f}" if value is not None else "-"

    rows = [["none (clean)", "0", cell(record["clean_accuracy"]), cell(record.get("baseline_clean_accuracy"))]]
    for attack in ("fgsm", "pgd", "worst_case"):
        baseline = record.get(f"baseline_{attack}") or {}
        for budget, accuracy in record[attack].items():
            name = "either (worst case)" if attack == "worst_case" else attack.upper()
            rows.append([name, budget, cell(accuracy), cell(baseline.get(budget))])
    return rows


def cross_check_line(record: Dict[str, Any]) -> str:
    check = record["cross_check"]
    verdict = "agree" if check["agrees"] else "DISAGREE"
    return (
        f"Cross-check on the first {check['examples']} digits: this project's PGD "
        f"(`modules/adversarial.py`) and ART's {verdict} within {check['margin']} at every budget "
        f"(largest difference {check['largest_difference']})."
    )
